"""The state machine, pure: pending -> firing after `for`, one event per transition,
reminders, resolution, silences, a new episode.  Times come from the test, not a clock."""

from __future__ import annotations

from telmon.alerts.rules import parse_rules
from telmon.alerts.state import FIRING, PENDING, AlertState, advance

T = 1_000_000.0
[RULE] = parse_rules([{"name": "silent", "kind": "silence", "after": "1h", "for": "10m"}])
[NOW_RULE] = parse_rules([{"name": "now", "kind": "silence", "after": "1h"}])


def active(*subjects: str, value: float = 4000.0) -> dict[str, tuple[float, dict[str, object]]]:
    return {s: (value, {}) for s in subjects}


def test_pending_then_firing_after_for_then_resolved() -> None:
    cur: dict[str, AlertState] = {}
    s = advance(RULE, cur, active("A"), T, reminder=0)
    assert cur["A"].state == PENDING and not s.events and [c.subject for c in s.changed] == ["A"]
    s = advance(RULE, cur, active("A"), T + 599, reminder=0)
    assert cur["A"].state == PENDING and not s.events and not s.changed
    s = advance(RULE, cur, active("A"), T + 600, reminder=0)
    assert cur["A"].state == FIRING and [(e.kind, e.alert.subject) for e in s.events] == [("firing", "A")]
    assert s.events[0].alert.summary == "A: no arrival for 1h06m"
    assert [k for k, _ in s.transitions] == ["firing"]
    # still firing: nothing to announce, nothing to write
    s = advance(RULE, cur, active("A"), T + 1200, reminder=0)
    assert not s.events and not s.changed
    s = advance(RULE, cur, {}, T + 1800, reminder=0)
    assert "A" not in cur and [(e.kind, e.alert.state) for e in s.events] == [("resolved", "resolved")]
    assert s.changed[0].resolved_at == T + 1800 and s.changed[0].notified == "resolved"


def test_pending_that_ends_is_dropped_silently() -> None:
    cur: dict[str, AlertState] = {}
    advance(RULE, cur, active("A"), T, reminder=0)
    s = advance(RULE, cur, {}, T + 60, reminder=0)
    assert s.removed == ["A"] and not s.events and cur == {}


def test_for_zero_fires_at_once_and_reminders_repeat() -> None:
    cur: dict[str, AlertState] = {}
    s = advance(NOW_RULE, cur, active("A", "B"), T, reminder=3600)
    assert sorted(e.alert.subject for e in s.events) == ["A", "B"]
    assert not advance(NOW_RULE, cur, active("A", "B"), T + 3599, reminder=3600).events
    s = advance(NOW_RULE, cur, active("A", "B"), T + 3600, reminder=3600)
    assert [e.kind for e in s.events] == ["reminder", "reminder"]
    assert not advance(NOW_RULE, cur, active("A", "B"), T + 3700, reminder=3600).events


def test_rule_reminder_overrides_the_setting() -> None:
    [rule] = parse_rules([{"name": "r", "kind": "silence", "after": "1h", "reminder": "10m"}])
    cur: dict[str, AlertState] = {}
    advance(rule, cur, active("A"), T, reminder=0)
    assert [e.kind for e in advance(rule, cur, active("A"), T + 600, reminder=0).events] == ["reminder"]


def test_silenced_alert_changes_state_but_is_announced_once_the_silence_ends() -> None:
    cur: dict[str, AlertState] = {}
    s = advance(NOW_RULE, cur, active("A", "B"), T, reminder=0, silenced=lambda subj: subj == "A")
    assert [e.alert.subject for e in s.events] == ["B"] and s.suppressed == 1
    assert cur["A"].state == FIRING and cur["A"].notified is None
    s = advance(NOW_RULE, cur, active("A", "B"), T + 60, reminder=0)
    assert [(e.kind, e.alert.subject) for e in s.events] == [("firing", "A")]


def test_silenced_resolution_is_not_announced_later() -> None:
    cur: dict[str, AlertState] = {}
    advance(NOW_RULE, cur, active("A"), T, reminder=0)
    s = advance(NOW_RULE, cur, {}, T + 60, reminder=0, silenced=lambda _s: True)
    assert not s.events and s.suppressed == 1 and s.changed[0].notified == "resolved"


def test_a_new_episode_starts_pending_and_is_announced_again() -> None:
    cur: dict[str, AlertState] = {}
    advance(RULE, cur, active("A"), T, reminder=0)
    advance(RULE, cur, active("A"), T + 600, reminder=0)
    advance(RULE, cur, {}, T + 700, reminder=0)
    s = advance(RULE, cur, active("A"), T + 800, reminder=0)
    assert cur["A"].state == PENDING and cur["A"].since == T + 800 and cur["A"].notified is None
    s = advance(RULE, cur, active("A"), T + 1400, reminder=0)
    assert [e.kind for e in s.events] == ["firing"]


def test_resolved_alert_that_was_never_announced_stays_quiet() -> None:
    cur: dict[str, AlertState] = {}
    advance(NOW_RULE, cur, active("A"), T, reminder=0, silenced=lambda _s: True)
    s = advance(NOW_RULE, cur, {}, T + 60, reminder=0)
    assert not s.events and s.changed[0].state == "resolved"
