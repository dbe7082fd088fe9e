"""What each rule sees: its subjects whose value crosses the threshold, set-based.

A pass builds one :class:`Context`; each data source is read once per pass however many rules
use it (one station listing for every `silence` rule, one completeness computation per span for
every `completeness` rule, ...), through the library functions of the capability that owns the
data: the Store protocol, telmon.schedule, telmon.tail, telmon.rollup and telmon.health.  No
source is ever queried per station.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from telmon.alerts.rules import TRANSFER_COUNTS, Rule, SubjectFilter
from telmon.errors import TelmonError

# subject -> (value, detail) of the subjects a rule finds active
Active = dict[str, tuple[float | None, dict[str, Any]]]

_ALL_STATIONS = 10**9  # Store.stations() pages; the rules want the whole registry in one read
_CHUNK = 5000  # station codes per IN (...) list, well under SQLite's host-parameter limit


class SourceUnavailable(TelmonError):
    """A rule's data source cannot answer (its tables do not exist, a read failed).  The rule's
    alerts then keep their state instead of resolving: no data is not good news."""

    status = 503


@dataclass
class Context:
    """One pass's view of the data, read lazily and at most once per source and parameters."""

    store: Any
    now: float
    series: Any = None
    service: Any = None
    config: Any = None
    stuck_after: float = 600.0
    reads: int = 0  # source reads done in this pass (bench/alerts.py reports it)
    _memo: dict[Any, Any] = field(default_factory=dict)

    def once(self, key: Any, fetch: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self.reads += 1
            self._memo[key] = fetch()
        return self._memo[key]

    def schedule_settings(self) -> Any:
        from telmon.schedule.settings import ScheduleSettings

        return ScheduleSettings.from_config(self.config)

    # --- sources --------------------------------------------------------------------------------
    def stations(self) -> list[dict[str, Any]]:
        return self.once("stations", lambda: self.store.stations(limit=_ALL_STATIONS))

    def schedule_status(self) -> dict[str, dict[str, Any]]:
        def fetch() -> dict[str, dict[str, Any]]:
            from telmon.schedule import query as sq

            try:
                rows = sq.status(self.store, now=self.now, settings=self.schedule_settings())["stations"]
            except TelmonError as exc:
                raise SourceUnavailable(f"schedule status: {exc}") from None
            return {r["station"]: r for r in rows}

        return self.once("schedule_status", fetch)

    def completeness(self, span: float) -> dict[str, dict[str, Any]]:
        def fetch() -> dict[str, dict[str, Any]]:
            from telmon.schedule import reads

            codes = [s["code"] for s in self.stations()]
            out: dict[str, dict[str, Any]] = {}
            with self.store._read() as conn:
                if not reads.tables_exist(conn):
                    raise SourceUnavailable("no schedule tables in this store (schedules not installed)")
                settings = self.schedule_settings()
                for i in range(0, len(codes), _CHUNK):
                    for row in reads.completeness(conn, codes[i:i + _CHUNK], self.now - span, self.now, self.now,
                                                  settings):
                        out[row["station"]] = row
            return out

        return self.once(("completeness", span), fetch)

    def missing(self, span: float) -> dict[str, dict[str, Any]]:
        def fetch() -> dict[str, dict[str, Any]]:
            from telmon.schedule import query as sq

            try:
                rows = sq.missing(self.store, self.now - span, self.now, now=self.now,
                                  settings=self.schedule_settings())["stations"]
            except TelmonError as exc:
                raise SourceUnavailable(f"missing slots: {exc}") from None
            return {r["station"]: r for r in rows}

        return self.once(("missing", span), fetch)

    def transfers(self, span: float, machines: tuple[str, ...] | None) -> dict[str, dict[str, Any]]:
        def fetch() -> dict[str, dict[str, Any]]:
            if self.series is None:
                raise SourceUnavailable("no series store: transfer statistics are not available here")
            from telmon.tail.names import parse_series, pattern
            from telmon.tail.query import transfers

            ans = transfers(self.series, span=span, end=self.now, machines=list(machines) if machines else None,
                            by=("direction", "client"), now=self.now)
            rows = {f"{r['direction']}/{r['client']}": r for r in ans["rows"]}
            # clients known but silent in the span: their counts are 0 (a `files below` rule needs them)
            for s in self.series.list_series(pattern(metric="latency")):
                key = parse_series(s.name)
                if key is not None and (not machines or key.machine in machines):
                    rows.setdefault(f"{key.direction}/{key.client}",
                                    {"direction": key.direction, "client": key.client, "idle": True})
            return rows

        return self.once(("transfers", span, machines), fetch)

    def series_stat(self, name: str, span: float, stat: str) -> dict[str, float]:
        def fetch() -> dict[str, float]:
            if self.series is None:
                raise SourceUnavailable("no series store here")
            from telmon.rollup.errors import UnknownSeries

            try:
                ans = self.series.series(name, self.now - span, self.now, step=0, stats=(stat,), now=self.now)
            except UnknownSeries:
                return {}
            out = {}
            for s in ans.series:
                vals = [p.get(stat) for p in s.points if p.get(stat) is not None]
                v = vals[-1] if vals else None
                if v is not None and math.isfinite(v):
                    out[s.name] = float(v)
            return out

        return self.once(("series", name, span, stat), fetch)

    def rejected(self, span: float) -> dict[str, int]:
        def fetch() -> dict[str, int]:
            counts: dict[str, int] = {}
            for r in self.store.rejected(since=self.now - span, limit=10_000):
                key = r.get("feed") or r.get("origin") or "files"
                counts[key] = counts.get(key, 0) + 1
            return counts

        return self.once(("rejected", span), fetch)

    def health(self) -> list[Any]:
        def fetch() -> list[Any]:
            if self.service is None:
                raise SourceUnavailable("telmon's own health is only known inside `telmon serve`")
            from telmon.health.snapshot import snapshot

            return snapshot(self.service, now=self.now, stuck_after=self.stuck_after, check_store=False)

        return self.once("health", fetch)


# --- kinds -------------------------------------------------------------------------------------------


def observe(rule: Rule, ctx: Context, subjects: SubjectFilter | None = None) -> Active:
    """The subjects ``rule`` finds active now, with their values.  Raises SourceUnavailable."""
    subjects = subjects or SubjectFilter(rule.subjects, rule.exclude)
    return _KIND[rule.kind](rule, ctx, subjects)


def _silence(rule: Rule, ctx: Context, subjects: SubjectFilter) -> Active:
    after = float(rule.param("after"))
    kinds = rule.param("station_kinds")
    never = bool(rule.param("include_never"))
    now = ctx.now
    by_code = _station_index(ctx)
    out: Active = {}
    for code in subjects.pick(by_code):
        s = by_code[code]
        if kinds and s["kind"] not in kinds:
            continue
        last = s["last_arrival_at"]
        if last is None:
            if not never:
                continue
            # never heard: silent since it was registered, not since the epoch
            value = now - s["created_at"]
        else:
            value = now - last
        if value > after:
            out[code] = (value, {"last_arrival": last, "never": last is None, "feed": s["last_feed"]})
    return out


def _station_index(ctx: Context) -> dict[str, dict[str, Any]]:
    return ctx.once("stations_by_code", lambda: {s["code"]: s for s in ctx.stations()})


def _status(rule: Rule, ctx: Context, subjects: SubjectFilter) -> Active:
    words = set(rule.param("status"))
    rows = ctx.schedule_status()
    out: Active = {}
    for code in subjects.pick(rows):
        r = rows[code]
        if r["noaa"] in words or r["status"] in words:
            out[code] = (None, {"status": r["status"], "noaa": r["noaa"], "last_report": r.get("last_report")})
    return out


def _missing(rule: Rule, ctx: Context, subjects: SubjectFilter) -> Active:
    rows = ctx.missing(float(rule.param("span")))
    out: Active = {}
    for code in subjects.pick(rows):
        n = rows[code]["missing"]
        if rule.breaches(n):
            out[code] = (float(n), {"open": rows[code].get("open")})
    return out


def _completeness(rule: Rule, ctx: Context, subjects: SubjectFilter) -> Active:
    rows = ctx.completeness(float(rule.param("span")))
    least = int(rule.param("min_expected") or 0)
    out: Active = {}
    for code in subjects.pick(rows):
        r = rows[code]
        pct = r.get("completeness")
        if pct is None or (r.get("expected") or 0) < least:
            continue
        if rule.breaches(pct):
            out[code] = (float(pct), {"expected": r["expected"], "received": r["received"], "missing": r["missing"]})
    return out


def _transfer(rule: Rule, ctx: Context, subjects: SubjectFilter) -> Active:
    metric = rule.param("metric")
    direction = rule.param("direction")
    machines = rule.param("machines")
    rows = ctx.transfers(float(rule.param("span")), tuple(machines) if machines else None)
    out: Active = {}
    for key in subjects.pick(rows):
        r = rows[key]
        if direction and r["direction"] != direction:
            continue
        v = r.get(metric)
        if v is None and metric in TRANSFER_COUNTS:
            v = 0
        if rule.breaches(v):
            out[key] = (float(v), {"files": r.get("files", 0), "errors": r.get("errors", 0),
                                   "over_max": r.get("over_max", 0), "latency_p95": r.get("latency_p95")})
    return out


def _series(rule: Rule, ctx: Context, subjects: SubjectFilter) -> Active:
    stat = rule.param("stat")
    values = ctx.series_stat(rule.param("series"), float(rule.param("span")), stat)
    return {name: (values[name], {"stat": stat}) for name in subjects.pick(values) if rule.breaches(values[name])}


def _rejected(rule: Rule, ctx: Context, subjects: SubjectFilter) -> Active:
    counts = ctx.rejected(float(rule.param("span")))
    return {k: (float(counts[k]), {}) for k in subjects.pick(counts) if rule.breaches(counts[k])}


# lag metric -> (component kinds, how the value is read)
_LAG: dict[str, tuple[tuple[str, ...], Callable[[Any], float | None]]] = {
    "ingest_lag": (("ingest",), lambda c: c.lag_s),
    "ingest_queue": (("ingest",), lambda c: c.figures.get("queue")),
    "tail_lag": (("tailer",), lambda c: c.lag_s),
    "tail_pending": (("tailer",), lambda c: c.figures.get("pending_bytes")),
    "outbox_age": (("sink", "forwarder"), lambda c: c.lag_s),
    "outbox_pending": (("sink", "forwarder"), lambda c: c.figures.get("pending", c.figures.get("waiting"))),
    "notify_failed": (("notifier",), lambda c: c.figures.get("failed_24h")),
    "notify_queued": (("notifier",), lambda c: c.figures.get("queued")),
    "down": (("ingest", "watcher", "tailer", "forwarder", "push-writer", "agent", "sink", "alerts"),
             lambda c: 1.0 if c.state == "down" else 0.0),
}


def _lag(rule: Rule, ctx: Context, subjects: SubjectFilter) -> Active:
    kinds, read = _LAG[rule.param("metric")]
    by_id = {c.id: c for c in ctx.health() if c.kind in kinds}
    out: Active = {}
    for cid in subjects.pick(by_id):
        c = by_id[cid]
        v = read(c)
        if v is not None and rule.breaches(float(v)):
            out[cid] = (float(v), {"state": c.state, "last_error": c.last_error})
    return out


_KIND: dict[str, Callable[[Rule, Context, SubjectFilter], Active]] = {
    "silence": _silence, "status": _status, "missing": _missing, "completeness": _completeness,
    "transfer": _transfer, "series": _series, "rejected": _rejected, "lag": _lag,
}


# --- words -------------------------------------------------------------------------------------------


def span_text(seconds: float) -> str:
    """3h12m, 2d4h, 45s: how long, for people."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m = s // 60
    if d:
        return f"{d}d{h}h" if h else f"{d}d"
    if h:
        return f"{h}h{m:02d}m" if m else f"{h}h"
    return f"{m}m"


def value_text(rule: Rule, value: float | None) -> str:
    if value is None:
        return ""
    if rule.kind == "silence" or (rule.kind == "lag" and rule.param("metric") in ("ingest_lag", "tail_lag",
                                                                                "outbox_age")):
        return span_text(value)
    if rule.kind == "completeness":
        return f"{value:g}%"
    if rule.kind == "transfer" and str(rule.param("metric")).startswith("latency"):
        return f"{value:.3g}s"
    return f"{value:g}"


_DEFAULT_SUMMARY = {
    "silence": "{subject}: no arrival for {value_text}",
    "status": "{subject}: status {detail_status}",
    "missing": "{subject}: {value_text} missing slots",
    "completeness": "{subject}: completeness {value_text} ({threshold})",
    "transfer": "{subject}: {metric} {value_text} ({threshold})",
    "series": "{subject}: {stat} {value_text} ({threshold})",
    "rejected": "{subject}: {value_text} rejected",
    "lag": "{subject}: {metric} {value_text} ({threshold})",
}


def summary(rule: Rule, subject: str, value: float | None, detail: dict[str, Any]) -> str:
    fields = {"rule": rule.name, "subject": subject, "value": value, "value_text": value_text(rule, value),
              "severity": rule.severity, "kind": rule.kind, "threshold": rule.threshold_text(),
              "labels": dict(rule.labels), "metric": rule.param("metric") or "", "stat": rule.param("stat") or "",
              "detail_status": f"{detail.get('noaa', '')}/{detail.get('status', '')}"}
    try:
        return (rule.summary or _DEFAULT_SUMMARY[rule.kind]).format_map(fields)
    except (KeyError, IndexError, ValueError, AttributeError):
        return _DEFAULT_SUMMARY[rule.kind].format_map(fields)
