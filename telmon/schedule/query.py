"""Schedule questions as library functions over a store: validated input, JSON-ready output with
ISO 8601 UTC times.  The HTTP routes (telmon/api/stations_pages.py) and the CLI wrap these.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from telmon.errors import BadRequest, NotFound
from telmon.query import _span, _stations, parse_limit
from telmon.schedule import reads
from telmon.schedule.registry import DEFAULT_WINDOW, read_registry
from telmon.schedule.settings import ScheduleSettings
from telmon.schedule.slots import next_expected
from telmon.schedule.store import edit_station, ensure_schema, import_registry, schedule_dict
from telmon.timeutil import iso, parse_span, parse_time

def _now(now: float | None) -> float:
    return time.time() if now is None else float(now)


def _iso_fields(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    for k in keys:
        if k in d:
            d[k] = iso(d[k])
    return d


def _read(store: Any) -> Any:
    # SQLiteStore's reader connection (a thread-local WAL reader); the schedule questions are
    # plain SQL over their own tables.
    return store._read()


def _require_tables(conn: Any) -> None:
    if not reads.tables_exist(conn):
        raise NotFound("schedule data in this store (run `telmon stations import` or start telmon once)", "schedule")


def _optional_span(value: object, field: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return parse_span(value)  # type: ignore[arg-type]
    except BadRequest:
        raise BadRequest(f"{field} must be seconds, HH:MM:SS or a span like 15m / 1h, got {value!r}", field=field) from None


def _duration(value: object, field: str) -> float | None:
    """Seconds from '290', '00:04:50', '01:00' (HH:MM) or '15m'; 0 allowed (a first slot at midnight)."""
    if value is None or value == "":
        return None
    s = str(value).strip()
    if ":" in s:
        from telmon.formats.decodes import parse_hms

        v = parse_hms(s)
        if v is None:
            raise BadRequest(f"{field} {value!r} is not HH:MM[:SS]", field=field)
        return float(v)
    try:
        f = float(s)
    except ValueError:
        return _optional_span(s, field)
    if f < 0:
        raise BadRequest(f"{field} must not be negative", field=field)
    return f


def _coord(value: object, field: str, limit: float) -> float | None:
    if value is None or value == "":
        return None
    try:
        f = float(str(value))
    except ValueError:
        raise BadRequest(f"{field} must be decimal degrees, got {value!r}", field=field) from None
    if not -limit <= f <= limit:
        raise BadRequest(f"{field} must be within ±{limit:g}", field=field)
    return f


# --- registry ----------------------------------------------------------------------------------


def import_file(store: Any, path: str | Path, fmt: str | None = None, *, now: float | None = None,
                settings: ScheduleSettings | None = None) -> dict[str, Any]:
    """Import a registry file (opendcs | pdt | hads | csv, or recognised by content)."""
    settings = settings or ScheduleSettings()
    ensure_schema(store)
    registry = read_registry(path, fmt, default_window=settings.default_window or DEFAULT_WINDOW)
    result = import_registry(store, registry, now=_now(now), settings=settings)
    out = result.as_dict()
    out["stations"] = len(registry.stations)
    return out


def edit(store: Any, code: str, *, name: str | None = None, lat: object = None, lon: object = None,
         interval: object = None, first: object = None, window: object = None, clear_schedule: bool = False,
         now: float | None = None) -> dict[str, Any]:
    ensure_schema(store)
    iv = _duration(interval, "interval")
    if iv is not None and iv <= 0:
        raise BadRequest("interval must be positive", field="interval")
    try:
        return edit_station(store, code, now=_now(now), name=name or None, lat=_coord(lat, "lat", 90),
                            lon=_coord(lon, "lon", 180), interval=iv, first=_duration(first, "first"),
                            window=_duration(window, "window"), clear_schedule=clear_schedule)
    except ValueError as exc:
        raise BadRequest(str(exc), field="schedule") from None


# --- one station ---------------------------------------------------------------------------------


def station(store: Any, code: str, *, now: float | None = None, settings: ScheduleSettings | None = None,
            recent: int = 20) -> dict[str, Any]:
    """What the station page shows: facts, schedule, status, last arrival, next expected slot,
    completeness over 24 h and 7 d, missing and late slots of the last 7 days, recent arrivals and
    time entries."""
    settings = settings or ScheduleSettings()
    t_now = _now(now)
    with _read(store) as conn:
        _require_tables(conn)
        found = reads.station_row(conn, code)
        if found is None:
            raise NotFound("station", code)
        info, row = found
        sid = info.pop("id")
        spans = {}
        for label, width in (("24h", 86400.0), ("7d", 7 * 86400.0)):
            spans[label] = reads.station_span(conn, row, t_now - width, t_now, t_now, settings, limit=200) \
                if row is not None else None
        arrivals = conn.execute(
            "SELECT received_at, message_time, feed, format, entry_count, meta FROM arrivals WHERE station_id = ? "
            "ORDER BY received_at DESC, id DESC LIMIT ?", (sid, recent)).fetchall()
        entries = conn.execute(
            "SELECT observed_at, vals, first_seen_at FROM entries WHERE station_id = ? ORDER BY observed_at DESC "
            "LIMIT ?", (sid, recent)).fetchall()
    sch = row.schedule if row else None
    out = dict(info)
    out.update({
        "schedule": schedule_dict(sch),
        "status": reads.map_status(row, t_now, settings),
        "noaa_status": reads.noaa_status(row, t_now, settings),
        "last_arrival": iso(info.pop("last_arrival_at")),
        "last_entry": iso(info.get("last_entry_at")),
        "last_report": iso(row.last_report_at) if row else None,
        "reports": row.reports if row else 0,
        "timed_by": row.timed_by if row else None,
        "now": iso(t_now),
    })
    out.pop("last_arrival_at", None)
    out.pop("last_entry_at", None)
    if sch is not None:
        n = next_expected(sch, t_now)
        out["next_expected"] = {"start": iso(sch.start(n)), "end": iso(sch.end(n))}
        out["last_slot"] = None if row is None or row.state.last is None else {
            "start": iso(sch.start(row.state.last)), "code": row.state.last_code}
    else:
        out["next_expected"] = None
        out["last_slot"] = None
    out["completeness"] = {k: _format_span(v) for k, v in spans.items()}
    out["recent_arrivals"] = [
        {"received_at": iso(r[0]), "message_time": iso(r[1]), "feed": r[2], "format": r[3], "entries": r[4]}
        for r in arrivals]
    out["recent_entries"] = [{"observed_at": iso(t), "values": orjson.loads(v) if v else {}, "first_seen_at": iso(s)}
                             for t, v, s in entries]
    return out


def _format_span(span: dict[str, Any] | None) -> dict[str, Any] | None:
    if span is None:
        return None
    _iso_fields(span, "start", "end")
    span["missing_slots"] = [iso(t) for t in span.get("missing_slots", [])]
    for g in span.get("missing_runs", []):
        _iso_fields(g, "start", "end")
    for g in span.get("late_slots", []):
        _iso_fields(g, "slot", "message_time")
    return span


def slots(store: Any, code: str, start: object = None, end: object = None, *, now: float | None = None,
          settings: ScheduleSettings | None = None, limit: object = None) -> dict[str, Any]:
    """One station's slot accounting over a span (default: the last day)."""
    settings = settings or ScheduleSettings()
    t_now = _now(now)
    t0, t1 = _span(start, end, now=t_now, default_span=86400.0)
    n = parse_limit(limit, 1000)
    with _read(store) as conn:
        _require_tables(conn)
        found = reads.station_row(conn, code)
        if found is None:
            raise NotFound("station", code)
        _, row = found
        if row is None or row.schedule is None:
            raise BadRequest(f"station {code!r} has no schedule (import one, edit it, or let it be inferred)",
                             field="station")
        span = reads.station_span(conn, row, t0, t1, t_now, settings, limit=n)
    out = {"station": code, "schedule": schedule_dict(row.schedule)}
    out.update(_format_span(span) or {})
    return out


# --- many stations -----------------------------------------------------------------------------------


def completeness(store: Any, stations: Iterable[str] | str | None, start: object = None, end: object = None, *,
                 now: float | None = None, settings: ScheduleSettings | None = None) -> dict[str, Any]:
    settings = settings or ScheduleSettings()
    t_now = _now(now)
    t0, t1 = _span(start, end, now=t_now, default_span=86400.0)
    codes = _stations(stations)
    with _read(store) as conn:
        _require_tables(conn)
        rows = reads.completeness(conn, codes, t0, t1, t_now, settings)
    unknown = sorted(set(codes) - {r["station"] for r in rows})
    return {"start": iso(t0), "end": iso(t1), "count": len(rows), "stations": rows, "unknown": unknown}


def missing(store: Any, start: object = None, end: object = None, stations: Iterable[str] | str | None = None, *,
            now: float | None = None, settings: ScheduleSettings | None = None, runs: bool = False) -> dict[str, Any]:
    """Scheduled stations with missing slots in the span (default: the last day), with their
    missing count; ``runs`` adds each station's runs of missing slots (start, end, slots, open)."""
    settings = settings or ScheduleSettings()
    t_now = _now(now)
    t0, t1 = _span(start, end, now=t_now, default_span=86400.0)
    codes = _stations(stations) if stations else None
    with _read(store) as conn:
        _require_tables(conn)
        rows = reads.stations_missing(conn, t0, t1, t_now, settings, codes, runs=runs)
    for r in rows:
        for g in r.get("runs", ()):
            _iso_fields(g, "start", "end")
    return {"start": iso(t0), "end": iso(t1), "count": len(rows), "stations": rows}


def silent(store: Any, since: object = None, *, now: float | None = None, settings: ScheduleSettings | None = None,
           include_never: bool = True) -> dict[str, Any]:
    """Stations with no report since ``since`` (default: now minus the active threshold)."""
    settings = settings or ScheduleSettings()
    t_now = _now(now)
    t = t_now - settings.active_within if since is None or since == "" else parse_time(since, field="since")
    with _read(store) as conn:
        _require_tables(conn)
        rows = reads.stations_silent_since(conn, t, include_never=include_never)
    for r in rows:
        _iso_fields(r, "last_report", "last_received")
    return {"since": iso(t), "count": len(rows), "stations": rows}


def status(store: Any, *, now: float | None = None, settings: ScheduleSettings | None = None,
           feed: str | None = None, state: str | None = None, located_only: bool = False) -> dict[str, Any]:
    """Every station with its status (for the map and `telmon schedule status`), with counts per
    status word and per NOAA letter; ``feed`` and ``state`` filter (comma-separated lists)."""
    settings = settings or ScheduleSettings()
    t_now = _now(now)
    feeds = {f.strip() for f in feed.split(",") if f.strip()} if feed else None
    states = {s.strip() for s in state.split(",") if s.strip()} if state else None
    if states and not states <= set(reads.STATUSES):
        raise BadRequest(f"status must be among {', '.join(reads.STATUSES)}", field="status")
    with _read(store) as conn:
        _require_tables(conn)
        rows = reads.map_rows(conn, t_now, settings)
    all_feeds = sorted({r["feed"] for r in rows if r["feed"]})
    counts = {s: 0 for s in reads.STATUSES}
    noaa = {"A": 0, "D": 0, "U": 0}
    for r in rows:
        counts[r["status"]] += 1
        noaa[r["noaa"]] += 1
    picked = [r for r in rows
              if (feeds is None or r["feed"] in feeds) and (states is None or r["status"] in states)
              and (not located_only or (r["lat"] is not None and r["lon"] is not None))]
    for r in picked:
        _iso_fields(r, "last_arrival", "last_report")
    return {"now": iso(t_now), "count": len(picked), "total": len(rows), "statuses": list(reads.STATUSES),
            "counts": counts, "noaa": noaa, "feeds": all_feeds,
            "unlocated": sum(1 for r in rows if r["lat"] is None or r["lon"] is None), "stations": picked}


__all__ = ["completeness", "edit", "import_file", "missing", "silent", "slots", "station", "status"]
