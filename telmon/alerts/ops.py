"""Alert operations as library functions: list, test, silence, unsilence, notifications.

The CLI (`telmon alerts ...`) and the API (`/api/v1/alerts/...`) are thin wrappers over
these.  Input is validated here (BadRequest, NotFound); output is JSON-ready with ISO times.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

from telmon.alerts import db
from telmon.alerts.evaluator import Evaluator
from telmon.alerts.notify import ChannelWorker, outgoing, sender_for
from telmon.alerts.observe import observe, value_text
from telmon.alerts.observe import summary as summary_text
from telmon.alerts.rules import Rule
from telmon.alerts.state import FIRING, AlertState, Event
from telmon.errors import BadRequest, NotFound
from telmon.query import parse_limit
from telmon.timeutil import iso, parse_span, parse_time

MAX_LIST = 10_000


def _limit(limit: object, default: int) -> int:
    return parse_limit(limit, default, MAX_LIST)


def list_alerts(evaluator: Evaluator, *, now: float, limit: object = None, rule: str | None = None) -> dict[str, Any]:
    """Rules with their pending / firing counts and last error, the alerts (pending and
    firing; live values when this process evaluates), active silences, and the channels'
    notification figures over the last day."""
    store = evaluator.store
    n = _limit(limit, 1000)
    if rule is not None and evaluator.rule(rule) is None:
        raise NotFound("rule", rule)
    counts = db.state_counts(store)
    rules = []
    for r in evaluator.rules:
        body = r.to_json()
        body["pending"] = counts.get((r.name, "pending"), 0)
        body["firing"] = counts.get((r.name, "firing"), 0)
        body["error"] = evaluator.errors.get(r.name)
        rules.append(body)
    alerts = db.states(store, rule=rule)
    live = evaluator.active
    rows = []
    for a in alerts[:n]:
        mem = live.get(a.rule, {}).get(a.subject)
        if mem is not None:  # this process evaluates: its values are newer than the stored ones
            a = mem
        body = a.to_json()
        r = evaluator.rule(a.rule)
        body["value_text"] = value_text(r, a.value) if r else None
        rows.append(body)
    sil = db.silences(store, now=now)
    figures = db.channel_figures(store, since=now - 86400)
    channels = [{"channel": c.name, **figures.get(c.name, {"queued": 0, "sent": 0, "failed": 0})}
                for c in evaluator.channels]
    known = {c["channel"] for c in channels}
    channels += [{"channel": ch, **f} for ch, f in sorted(figures.items()) if ch not in known]
    for c in channels:
        c["last_error_at"] = iso(c.get("last_error_at"))
    return {
        "now": iso(now), "rules": rules, "count": len(alerts), "alerts": rows,
        "silences": [s.to_json(now) for s in sil], "channels": channels,
        "last_pass": evaluator.last.to_json() if evaluator.last else None,
    }


def test_rule(evaluator: Evaluator, name: str, *, now: float, notify: bool = False,
              deliver_here: bool = False) -> dict[str, Any]:
    """What rule ``name`` finds now, without changing any alert.  ``notify`` also sends a test
    notification listing those subjects to the rule's channels: queued for the running
    server's channel workers, or with ``deliver_here`` attempted once from this process (the
    CLI), the outcome recorded either way."""
    rule = evaluator.rule(name)
    if rule is None:
        raise NotFound("rule", name)
    ctx = evaluator.context(now)
    active = observe(rule, ctx, evaluator.filters[rule.name])
    silences = [s for s in db.silences(evaluator.store, now=now) if fnmatch.fnmatchcase(rule.name, s.rule)]
    found = []
    for subject in sorted(active):
        value, detail = active[subject]
        found.append({"subject": subject, "value": value, "value_text": value_text(rule, value),
                      "summary": summary_text(rule, subject, value, detail), "detail": detail,
                      "silenced": any(fnmatch.fnmatchcase(subject, s.subject) for s in silences)})
    out: dict[str, Any] = {"rule": rule.to_json(), "now": iso(now), "count": len(found), "active": found,
                           "reads": ctx.reads, "notifications": []}
    if notify:
        out["notifications"] = _send_test(evaluator, rule, found, now, deliver_here)
    return out


def _send_test(evaluator: Evaluator, rule: Rule, found: list[dict[str, Any]], now: float,
               deliver_here: bool) -> list[dict[str, Any]]:
    if not evaluator.channels:
        raise BadRequest("no notification channel is configured (alert_smtp_host, alert_webhooks)", field="notify")
    events = [Event(FIRING, AlertState(rule.name, f["subject"], FIRING, now, rule.severity, fired_at=now,
                                       value=f["value"], detail=f["detail"], summary=f["summary"]), rule)
              for f in found[:200]]
    if not events:
        events = [Event(FIRING, AlertState(rule.name, "(test)", FIRING, now, rule.severity, fired_at=now,
                                           summary=f"test of rule {rule.name}: no subject matches now"), rule)]
    notes = outgoing(events, evaluator.channels, evaluator.settings, now=now, kind="test")
    if not notes:
        raise BadRequest(f"rule {rule.name} notifies no configured channel (see its notify and email_to)",
                         field="notify")
    for o in notes:
        o.status = "sending" if deliver_here else "queued"
    ids = db.write_pass(evaluator.store, [], [], [], notes, now=now)
    if deliver_here:
        for note_id, o in zip(ids, notes):
            channel = next(c for c in evaluator.channels if c.name == o.channel)
            worker = ChannelWorker(evaluator.store, channel, sender_for(channel, evaluator.settings), attempts=1)
            note = db.get_notification(evaluator.store, note_id)
            if note is not None:
                worker.attempt(note)
            worker.sender.close()
    elif evaluator.dispatcher is not None:
        evaluator.dispatcher.wake()
    result = []
    for note_id in ids:
        note = db.get_notification(evaluator.store, note_id)
        if note is not None:
            result.append(note.to_json())
    return result


def _until(now: float, duration: object, until: object) -> float:
    if (duration in (None, "")) == (until in (None, "")):
        raise BadRequest("give how long (for, e.g. 2h) or until when (until), one of them", field="for")
    if duration not in (None, ""):
        try:
            return now + parse_span(duration)  # type: ignore[arg-type]
        except BadRequest:
            raise BadRequest(f"for must be a span like 30m, 2h, 7d, got {duration!r}", field="for") from None
    return parse_time(until, field="until")


def silence(evaluator: Evaluator, rule: str, subject: str | None = None, *, now: float, duration: object = None,
            until: object = None, comment: str = "", created_by: str | None = None) -> dict[str, Any]:
    """Silence alerts of rules matching the glob ``rule`` and subjects matching ``subject``
    (default ``*``) from now until ``until`` or for ``duration``.  Returns the silence and
    the configured rules it matches (a silence matching none is allowed: rules may come)."""
    subject = subject or "*"
    expires = _until(now, duration, until)
    s = db.add_silence(evaluator.store, rule, subject, starts_at=now, expires_at=expires, now=now,
                       created_by=created_by, comment=comment or "")
    matches = [r.name for r in evaluator.rules if fnmatch.fnmatchcase(r.name, rule)]
    return {"silence": s.to_json(now), "matches_rules": matches}


def unsilence(evaluator: Evaluator, silence_id: object, *, now: float) -> dict[str, Any]:
    try:
        sid = int(str(silence_id))
    except ValueError:
        raise BadRequest(f"a silence id is a number, got {silence_id!r}", field="id") from None
    s = db.expire_silence(evaluator.store, sid, now=now)
    return {"silence": s.to_json(now)}


def silences(evaluator: Evaluator, *, now: float, include_expired: bool = False) -> dict[str, Any]:
    rows = db.silences(evaluator.store, now=now, active_only=not include_expired)
    return {"count": len(rows), "silences": [s.to_json(now) for s in rows]}


def notifications(evaluator: Evaluator, *, status: str | None = None, channel: str | None = None,
                  limit: object = None, payload: bool = False) -> dict[str, Any]:
    if status not in (None, "", "queued", "sending", "sent", "failed"):
        raise BadRequest("status must be queued, sent or failed", field="status")
    rows = db.notifications(evaluator.store, status=status or None, channel=channel or None, limit=_limit(limit, 100))
    return {"count": len(rows), "notifications": [n.to_json(with_payload=payload) for n in rows]}


def rules_list(rules: Sequence[Rule]) -> dict[str, Any]:
    return {"count": len(rules), "rules": [r.to_json() for r in rules]}
