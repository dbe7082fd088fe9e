"""The state of one rule for one subject, and how a pass moves it (pure: no database, no clock).

    (nothing) --active--> pending --active for `for`--> firing --inactive--> resolved
                pending --inactive--> (nothing)          resolved --active--> pending (a new episode)

One notification per transition: ``notified`` remembers the last state announced, so a
restart, a second pass or a second process never announces it twice; a firing alert is
announced again only after the reminder interval.  A silenced alert changes state as usual but
announces nothing; once the silence is gone a still-firing alert is announced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from telmon.alerts.observe import Active, summary
from telmon.alerts.rules import Rule

PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"


@dataclass(slots=True)
class AlertState:
    rule: str
    subject: str
    state: str
    since: float  # the condition has held since then (this episode)
    severity: str = "warning"
    fired_at: float | None = None
    resolved_at: float | None = None
    value: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    notified: str | None = None  # "firing" | "resolved" | None: the last state announced
    notified_at: float | None = None
    summary: str = ""

    def to_json(self) -> dict[str, Any]:
        from telmon.timeutil import iso

        return {"rule": self.rule, "subject": self.subject, "state": self.state, "severity": self.severity,
                "since": iso(self.since), "fired_at": iso(self.fired_at), "resolved_at": iso(self.resolved_at),
                "value": self.value, "summary": self.summary, "detail": self.detail, "notified": self.notified,
                "notified_at": iso(self.notified_at)}


@dataclass(slots=True)
class Event:
    """Something to announce: ``kind`` is firing, resolved or reminder."""

    kind: str
    alert: AlertState
    rule: Rule


@dataclass(slots=True)
class Step:
    """What one pass did to one rule's alerts."""

    changed: list[AlertState] = field(default_factory=list)  # to write (insert or replace)
    removed: list[str] = field(default_factory=list)  # subjects whose pending alert ended: delete
    events: list[Event] = field(default_factory=list)
    transitions: list[tuple[str, AlertState]] = field(default_factory=list)  # ("firing" | "resolved", alert)
    suppressed: int = 0  # announcements a silence held back


def advance(rule: Rule, current: dict[str, AlertState], active: Active, now: float, *, reminder: float,
            silenced: Callable[[str], bool] = lambda _s: False) -> Step:
    """Move ``current`` (subject -> pending or firing alert of ``rule``, changed in place) to
    what ``active`` says now.  Resolved alerts leave ``current`` (their rows stay in the store)."""
    step = Step()
    every = rule.reminder if rule.reminder is not None else reminder
    marked: set[int] = set()

    def changed(st: AlertState) -> None:
        if id(st) not in marked:
            marked.add(id(st))
            step.changed.append(st)

    for subject, (value, detail) in active.items():
        st = current.get(subject)
        if st is None:
            st = current[subject] = AlertState(rule.name, subject, PENDING, now, rule.severity)
            changed(st)
        st.value, st.detail = value, detail
        st.severity = rule.severity
        if st.state == PENDING and now - st.since >= rule.for_s:
            st.state, st.fired_at = FIRING, now
            st.summary = summary(rule, subject, value, detail)
            step.transitions.append((FIRING, st))
            changed(st)
        if st.state != FIRING:
            continue
        want = None
        if st.notified != FIRING:
            want = FIRING
        elif every > 0 and st.notified_at is not None and now - st.notified_at >= every:
            want = "reminder"
        if want is None:
            continue
        st.summary = summary(rule, subject, value, detail)
        if silenced(subject):
            step.suppressed += 1
            continue
        step.events.append(Event(want, replace(st, detail=dict(detail)), rule))
        st.notified, st.notified_at = FIRING, now
        changed(st)
    for subject in [s for s in current if s not in active]:
        st = current.pop(subject)
        if st.state == PENDING:
            step.removed.append(subject)
            continue
        st.state, st.resolved_at = RESOLVED, now
        step.transitions.append((RESOLVED, st))
        changed(st)
        if st.notified == FIRING:
            if silenced(subject):
                step.suppressed += 1
            else:
                step.events.append(Event(RESOLVED, replace(st, detail=dict(st.detail)), rule))
            # decided either way: a silenced resolution is not announced later
            st.notified, st.notified_at = RESOLVED, now
    return step
