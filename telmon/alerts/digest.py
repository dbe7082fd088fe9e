"""The daily digest: one e-mail a day, in the spirit of MetPX's statsMonitor report (a report
"built throughout the different monitoring methods ... emailed to the chosen recipients",
shared/seeds/004): what fired, which stations were silent, completeness per source, the
transfer clients, and telmon's own health, over the last 24 hours.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from telmon import __version__
from telmon.alerts import db
from telmon.alerts.notify import EMAIL
from telmon.alerts.observe import Context, SourceUnavailable, span_text
from telmon.alerts.settings import AlertSettings, digest_minute
from telmon.timeutil import iso

if TYPE_CHECKING:
    from telmon.alerts.evaluator import Evaluator

DAY = 86400.0
LIST_MAX = 50


def enabled(settings: AlertSettings) -> bool:
    return settings.email_enabled and bool(settings.alert_digest_at) and bool(
        settings.alert_digest_to or settings.alert_mail_to)


def due(last: float, now: float, settings: AlertSettings) -> bool:
    """True when today's digest time (UTC) has passed and no digest went out since it."""
    at = (now // DAY) * DAY + digest_minute(settings.alert_digest_at) * 60
    if now < at:
        at -= DAY
    return last < at <= now


def outgoing(evaluator: Evaluator, now: float) -> db.Outgoing:
    title, text = compose(evaluator, now)
    s = evaluator.settings
    return db.Outgoing(EMAIL, "digest", title, {"to": list(s.alert_digest_to or s.alert_mail_to), "subject": title,
                                                "text": text})


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> list[str]:
    cells = [[("-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)) for v in r] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
    out = ["  " + "  ".join(h.upper().ljust(w) for h, w in zip(header, widths)).rstrip()]
    out += ["  " + "  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip() for c in cells]
    return out


def compose(evaluator: Evaluator, now: float) -> tuple[str, str]:
    """(subject, text) of the digest for the 24 hours before ``now``."""
    ctx = evaluator.context(now)
    store = evaluator.store
    start = now - DAY
    events = db.events_between(store, start, now)
    fired = [e for e in events if e["kind"] == "firing"]
    firing_now = db.states(store)
    firing_now = [a for a in firing_now if a.state == "firing"]
    silent = store.stations_silent(start, now)
    lines = [f"telmon {__version__} daily report for {socket.gethostname()}", f"period: {iso(start)} .. {iso(now)}", ""]

    lines.append(f"ALERTS: {len(fired)} fired in the period, {len(firing_now)} firing now")
    per_rule: dict[str, list[str]] = {}
    for e in fired:
        per_rule.setdefault(e["rule"], []).append(e["subject"])
    if per_rule:
        lines += _table([(r, len(s), ", ".join(s[:8]) + (" ..." if len(s) > 8 else ""))
                         for r, s in sorted(per_rule.items())], ["rule", "fired", "subjects"])
    if firing_now:
        lines.append("  firing now:")
        lines += [f"    [{a.severity}] {a.rule}: {a.summary or a.subject} (since {iso(a.since)})"
                  for a in firing_now[:LIST_MAX]]
        if len(firing_now) > LIST_MAX:
            lines.append(f"    ... and {len(firing_now) - LIST_MAX} more")
    lines.append("")

    lines.append(f"STATIONS SILENT over the period: {len(silent)}")
    lines += _table([(s["station"], iso(s["last_arrival"]) or "never",
                      span_text(now - s["last_arrival"]) if s["last_arrival"] else "-") for s in silent[:LIST_MAX]],
                    ["station", "last arrival", "silent for"]) if silent else []
    if len(silent) > LIST_MAX:
        lines.append(f"  ... and {len(silent) - LIST_MAX} more")
    lines.append("")

    lines.append("COMPLETENESS PER SOURCE (feed), last 24 h")
    lines += _table(_per_feed(ctx, start), ["feed", "stations", "heard", "expected", "received", "complete %"])
    lines.append("")

    transfers = _transfers(ctx)
    if transfers:
        lines.append("TRANSFERS, last 24 h (clients with errors or files over the maximum latency first)")
        lines += _table(transfers, ["client", "files", "errors", "over max", "latency p95 s"])
        lines.append("")

    lines.append("TELMON HEALTH")
    lines += _health(evaluator, ctx, start)
    lines.append("")
    subject = (f"[telmon] daily report: {len(fired)} alerts fired, {len(firing_now)} firing, "
               f"{len(silent)} stations silent")
    return subject, "\n".join(lines) + "\n"


def _per_feed(ctx: Context, start: float) -> list[tuple[Any, ...]]:
    stations = ctx.stations()
    try:
        complete = ctx.completeness(DAY)
    except SourceUnavailable:
        complete = {}
    feeds: dict[str, list[float]] = {}
    for s in stations:
        row = feeds.setdefault(s["last_feed"] or "(never heard)", [0, 0, 0, 0])
        row[0] += 1
        if s["last_arrival_at"] is not None and s["last_arrival_at"] >= start:
            row[1] += 1
        c = complete.get(s["code"])
        if c and c.get("expected"):
            row[2] += c["expected"]
            row[3] += c["received"]
    return [(feed, int(n), int(heard), int(exp) if exp else None, int(rec) if exp else None,
             round(100.0 * rec / exp, 2) if exp else None) for feed, (n, heard, exp, rec) in sorted(feeds.items())]


def _transfers(ctx: Context) -> list[tuple[Any, ...]]:
    try:
        rows = ctx.transfers(DAY, None)
    except Exception:  # noqa: BLE001 - no transfer data here: the section is left out
        return []
    out = [(k, r.get("files", 0), r.get("errors", 0), r.get("over_max", 0), r.get("latency_p95"))
           for k, r in rows.items()]
    out.sort(key=lambda t: (-(t[2] or 0) - (t[3] or 0), t[0]))
    return out[:LIST_MAX]


def _health(evaluator: Evaluator, ctx: Context, start: float) -> list[str]:
    lines = []
    if evaluator.service is not None:
        comps = ctx.health()
        lines += _table([(c.id, c.state, span_text(c.lag_s) if c.lag_s else "-", c.last_error or "")
                         for c in comps], ["component", "state", "lag", "last error"])
    rejected = ctx.rejected(DAY)
    lines.append(f"  rejected in the period: {sum(rejected.values())}"
                 + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(rejected.items()))})" if rejected else ""))
    failed = db.notifications(evaluator.store, status="failed", since=start)
    lines.append(f"  notifications failed in the period: {len(failed)}")
    lines += [f"    {iso(n.created_at)} {n.channel}: {n.title} -- {n.last_error}" for n in failed[:10]]
    errors = dict(evaluator.errors)
    if errors:
        lines.append("  rules not evaluated:")
        lines += [f"    {k}: {v}" for k, v in sorted(errors.items())]
    return lines
