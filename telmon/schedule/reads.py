"""Answers from the slot tables, over a read connection: index ranges and per-station rows only,
never a scan of arrivals or entries.  Times in and out are epoch seconds (query.py formats).
"""

from __future__ import annotations

import sqlite3
from operator import itemgetter
from collections.abc import Sequence
from typing import Any

import orjson

from telmon.schedule.settings import ScheduleSettings
from telmon.schedule.slots import (
    DAY,
    LABELS,
    LATE_CODES,
    Schedule,
    cached_schedule,
    run_overlap,
    span_counts,
    trailing_run,
)
from telmon.schedule.store import SELECT_COLUMNS, StationRow, schedule_dict

# Map colours are keyed by these; the legend lists them in this order.
STATUSES = ("on_time", "late", "missing", "silent", "never", "unscheduled")


def _marks(n: int) -> str:
    return ",".join("?" * n)


def tables_exist(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sched_station'").fetchone() is not None


def noaa_status(row: StationRow | None, now: float, settings: ScheduleSettings) -> str:
    """NOAA's platform status: A heard within ``active_within``, D not since, U never."""
    if row is None or row.last_report_at is None:
        return "U"
    return "A" if now - row.last_report_at <= settings.active_within else "D"


def map_status(row: StationRow | None, now: float, settings: ScheduleSettings) -> str:
    """One word for the map: never, silent, missing (the last due slot has no report), late (the
    newest filled slot was T/U), on_time, or unscheduled (heard, but no schedule to judge by)."""
    noaa = noaa_status(row, now, settings)
    if noaa == "U":
        return "never"
    if noaa == "D":
        return "silent"
    assert row is not None
    if row.schedule is None or row.state.last is None:
        return "unscheduled"
    if trailing_run(row.schedule, row.state, now, settings.grace):
        return "missing"
    return "late" if row.state.last_code in LATE_CODES else "on_time"


def _row_from(r: Sequence[Any], offset: int) -> StationRow | None:
    part = r[offset:]
    return None if part[0] is None else StationRow.from_row(part)


# --- one station ---------------------------------------------------------------------------------


def station_row(conn: sqlite3.Connection, code: str) -> tuple[dict[str, Any], StationRow | None] | None:
    r = conn.execute(
        "SELECT s.id, s.code, s.kind, s.name, s.lat, s.lon, s.meta, s.registered, s.last_feed, s.last_arrival_at, "
        f"s.arrival_count, s.last_entry_at, {SELECT_COLUMNS} FROM stations s "
        "LEFT JOIN sched_station ss ON ss.station_id = s.id WHERE s.code = ?", (code,),
    ).fetchone()
    if r is None:
        return None
    keys = ("id", "station", "kind", "name", "lat", "lon", "meta", "registered", "feed", "last_arrival_at",
            "arrival_count", "last_entry_at")
    info = dict(zip(keys, r))
    info["meta"] = orjson.loads(info["meta"]) if info["meta"] else {}
    info["registered"] = bool(info["registered"])
    return info, _row_from(r, len(keys))


def runs_near(conn: sqlite3.Connection, sid: int, schedule: Schedule, a: float, b: float) -> list[tuple[int, int]]:
    # Runs never cross midnight, so every run touching [a, b) starts in [a - 1 day, b).
    return [(schedule.index(s), schedule.index(e)) for s, e in conn.execute(
        "SELECT start_t, end_t FROM sched_gap WHERE station_id = ? AND start_t >= ? AND start_t < ? ORDER BY start_t",
        (sid, a - DAY, b))]


def late_in(conn: sqlite3.Connection, sid: int, a: float, b: float) -> list[tuple[float, str, float | None]]:
    return conn.execute(
        "SELECT slot_t, code, message_t FROM sched_late WHERE station_id = ? AND slot_t >= ? AND slot_t < ? "
        "ORDER BY slot_t", (sid, a, b)).fetchall()


def station_span(
    conn: sqlite3.Connection, row: StationRow, a: float, b: float, now: float, settings: ScheduleSettings,
    *, limit: int = 500,
) -> dict[str, Any]:
    """Counts over slots starting in [a, b), the missing slots (newest first, at most ``limit``)
    as runs and as slot start times, and the late slots."""
    sch = row.schedule
    out: dict[str, Any] = {"start": a, "end": b}
    if sch is None:
        out.update({"expected": None, "received": None, "on_time": None, "late": None, "missing": None,
                    "completeness": None, "missing_runs": [], "missing_slots": [], "late_slots": []})
        return out
    runs = runs_near(conn, row.station_id, sch, a, b)
    late = late_in(conn, row.station_id, a, b)
    counts = span_counts(sch, row.state, runs, [sch.index(t) for t, _, _ in late], a, b, now, settings.grace)
    out.update(counts.as_dict())
    parts = []
    for n0, n1 in runs:
        part = run_overlap(sch, n0, n1, a, b)
        if part:
            parts.append((part[0], part[1], False))
    trail = trailing_run(sch, row.state, now, settings.grace)
    if trail:
        part = run_overlap(sch, trail[0], trail[1], a, b)
        if part:
            parts.append((part[0], part[1], True))
    parts = merge_runs(parts)[::-1]
    out["missing_runs"] = [{"start": sch.start(n0), "end": sch.end(n1), "slots": n1 - n0 + 1, "open": trailing}
                           for n0, n1, trailing in parts]
    slots: list[float] = []
    for n0, n1, _ in parts:
        for n in range(n1, n0 - 1, -1):
            if len(slots) >= limit:
                break
            slots.append(sch.start(n))
    out["missing_slots"] = slots
    out["missing_slots_truncated"] = counts.missing > len(slots)
    out["late_slots"] = [{"slot": t, "code": code, "label": LABELS[code], "message_time": m} for t, code, m in late]
    return out


# --- many stations -------------------------------------------------------------------------------


def completeness(
    conn: sqlite3.Connection, codes: Sequence[str], a: float, b: float, now: float, settings: ScheduleSettings,
) -> list[dict[str, Any]]:
    """Per station: expected / received / on time / late / missing slots in [a, b) and completeness %."""
    if not codes:
        return []
    rows = conn.execute(
        f"SELECT s.code, {SELECT_COLUMNS} FROM stations s JOIN sched_station ss ON ss.station_id = s.id "
        f"WHERE s.code IN ({_marks(len(codes))})", list(codes),
    ).fetchall()
    by_sid = {r[1]: (r[0], StationRow.from_row(r[1:])) for r in rows}
    runs: dict[int, list[tuple[float, float]]] = {}
    lates: dict[int, list[float]] = {}
    sids = list(by_sid)
    if sids:
        for sid, s, e in conn.execute(
            f"SELECT station_id, start_t, end_t FROM sched_gap WHERE station_id IN ({_marks(len(sids))}) "
            "AND start_t >= ? AND start_t < ?", [*sids, a - DAY, b]):
            runs.setdefault(sid, []).append((s, e))
        for sid, t in conn.execute(
            f"SELECT station_id, slot_t FROM sched_late WHERE station_id IN ({_marks(len(sids))}) "
            "AND slot_t >= ? AND slot_t < ?", [*sids, a, b]):
            lates.setdefault(sid, []).append(t)
    out = []
    for sid, (code, row) in by_sid.items():
        item: dict[str, Any] = {"station": code, "schedule": schedule_dict(row.schedule)}
        sch = row.schedule
        if sch is None:
            item.update({"expected": None, "received": None, "on_time": None, "late": None, "missing": None,
                         "completeness": None})
        else:
            item.update(span_counts(
                sch, row.state, [(sch.index(s), sch.index(e)) for s, e in runs.get(sid, ())],
                [sch.index(t) for t in lates.get(sid, ())], a, b, now, settings.grace).as_dict())
        out.append(item)
    out.sort(key=lambda d: d["station"])
    return out


def stations_missing(
    conn: sqlite3.Connection, a: float, b: float, now: float, settings: ScheduleSettings,
    codes: Sequence[str] | None = None, *, runs: bool = True,
) -> list[dict[str, Any]]:
    """Scheduled stations with at least one missing slot starting in [a, b): their missing count
    and (if ``runs``) the runs.  Stored runs come from the sched_gap_start index; the unstored
    trailing runs from stations whose next expected slot started before ``b`` and is overdue."""
    found: dict[int, list[tuple[int, int, bool]]] = {}
    counts: dict[int, int] = {}
    names: dict[int, tuple[str, str | None]] = {}
    schedules: dict[int, Schedule] = {}
    if runs:
        where, params = "g.start_t >= ? AND g.start_t < ? AND g.end_t >= ?", (a - DAY, b, a)
    else:
        # Runs wholly inside the span are summed by SQLite from the covering index; only the
        # runs cut by an edge of the span need slot arithmetic.
        for sid, code, name, n in conn.execute(
                "SELECT g.station_id, s.code, s.name, sum(g.missing) FROM sched_gap g JOIN stations s ON s.id = g.station_id "
                "WHERE g.start_t >= ? AND g.start_t < ? AND g.end_t < ? GROUP BY g.station_id", (a, b, b)):
            counts[sid] = n
            names[sid] = (code, name)
        # Runs never cross midnight: a span edge that is a midnight cuts no run.
        edges = []
        if a % DAY:
            edges.append(("g.start_t >= ? AND g.start_t < ? AND g.end_t >= ?", (a - DAY, a, a)))
        if b % DAY:
            edges.append(("g.start_t >= ? AND g.start_t < ? AND g.end_t >= ?", (a, b, b)))
        where = " OR ".join(f"({w})" for w, _ in edges) or "0"
        params = tuple(p for _, ps in edges for p in ps)
    for sid, s_t, e_t, iv, first, window, baud, source in conn.execute(
        "SELECT g.station_id, g.start_t, g.end_t, ss.interval_s, ss.first_s, ss.window_s, ss.baud, "
        f"ss.source FROM sched_gap g JOIN sched_station ss ON ss.station_id = g.station_id WHERE {where}", params):
        sch = schedules.get(sid) or schedules.setdefault(
            sid, cached_schedule(iv, first or 0.0, window or 0.0, baud, source or "registry"))
        part = run_overlap(sch, sch.index(s_t), sch.index(e_t), a, b)
        if part:
            found.setdefault(sid, []).append((part[0], part[1], False))
    # Silent stations: their trailing run is arithmetic on the columns, no row object needed.
    for sid, iv, first, window, baud, source, last_t in conn.execute(
        "SELECT station_id, interval_s, first_s, window_s, baud, source, last_t FROM sched_station "
        "WHERE next_t < ? AND next_end <= ?", (b, now - settings.grace)):
        if not iv or last_t is None:
            continue
        sch = schedules.get(sid) or schedules.setdefault(
            sid, cached_schedule(iv, first or 0.0, window or 0.0, baud, source or "registry"))
        last, due = sch.index(last_t), sch.last_due(now, settings.grace)
        part = run_overlap(sch, last + 1, due, a, b) if due > last else None
        if part:
            found.setdefault(sid, []).append((part[0], part[1], True))
    if not found and not counts:
        return []
    names.update(_codes(conn, [sid for sid in found if sid not in names]))
    wanted = set(codes) if codes else None
    out = []
    if wanted is None:
        # The common case, one plain dict per station: runs wholly inside the span only.
        out = [{"station": names[sid][0], "name": names[sid][1], "missing": n, "open": False}
               for sid, n in counts.items() if sid not in found]
    for sid in (found.keys() | counts.keys()) if wanted is not None else found.keys():
        code, name = names.get(sid, (str(sid), None))
        if wanted is not None and code not in wanted:
            continue
        merged = merge_runs(found.get(sid, []))
        item: dict[str, Any] = {"station": code, "name": name,
                                "missing": counts.get(sid, 0) + sum(n1 - n0 + 1 for n0, n1, _ in merged),
                                "open": any(t for _, _, t in merged)}
        if runs:
            sch = schedules[sid]
            item["interval_s"] = sch.interval
            item["runs"] = [{"start": sch.start(n0), "end": sch.end(n1), "slots": n1 - n0 + 1, "open": trailing}
                            for n0, n1, trailing in merged]
        out.append(item)
    out.sort(key=itemgetter("station"))
    return out


def merge_runs(parts: list[tuple[int, int, bool]]) -> list[tuple[int, int, bool]]:
    """Sorted runs with neighbours joined: storage splits runs at midnight, readers should not see it."""
    out: list[tuple[int, int, bool]] = []
    for n0, n1, trailing in sorted(parts):
        if out and n0 <= out[-1][1] + 1:
            p0, p1, pt = out[-1]
            out[-1] = (p0, max(p1, n1), pt or trailing)
        else:
            out.append((n0, n1, trailing))
    return out


def _codes(conn: sqlite3.Connection, sids: list[int]) -> dict[int, tuple[str, str | None]]:
    out: dict[int, tuple[str, str | None]] = {}
    for i in range(0, len(sids), 500):
        chunk = sids[i:i + 500]
        for sid, code, name in conn.execute(
                f"SELECT id, code, name FROM stations WHERE id IN ({_marks(len(chunk))})", chunk):
            out[sid] = (code, name)
    return out


def stations_silent_since(conn: sqlite3.Connection, since: float, *, include_never: bool = True) -> list[dict[str, Any]]:
    """Stations whose newest report is older than ``since`` (and, if asked, those never heard)."""
    rows = conn.execute(
        "SELECT s.code, s.name, s.registered, ss.last_report_at, ss.last_received_at FROM sched_station ss "
        "JOIN stations s ON s.id = ss.station_id WHERE ss.last_report_at < ?", (since,)).fetchall()
    if include_never:
        rows += conn.execute(
            "SELECT s.code, s.name, s.registered, ss.last_report_at, ss.last_received_at FROM sched_station ss "
            "JOIN stations s ON s.id = ss.station_id WHERE ss.last_report_at IS NULL").fetchall()
    out = [{"station": c, "name": n, "registered": bool(reg), "last_report": lr, "last_received": lrx,
            "never": lr is None} for c, n, reg, lr, lrx in rows]
    out.sort(key=lambda d: d["station"])
    return out


def map_rows(conn: sqlite3.Connection, now: float, settings: ScheduleSettings) -> list[dict[str, Any]]:
    """Every station with its status words (one row each; the map filters the unlocated out)."""
    rows = conn.execute(
        "SELECT s.code, s.name, s.kind, s.lat, s.lon, s.registered, s.last_feed, s.last_arrival_at, "
        f"{SELECT_COLUMNS} FROM stations s LEFT JOIN sched_station ss ON ss.station_id = s.id ORDER BY s.code"
    ).fetchall()
    out = []
    for r in rows:
        row = _row_from(r, 8)
        sch = row.schedule if row else None
        out.append({
            "station": r[0], "name": r[1], "kind": r[2], "lat": r[3], "lon": r[4], "registered": bool(r[5]),
            "feed": r[6], "last_arrival": r[7], "last_report": row.last_report_at if row else None,
            "status": map_status(row, now, settings), "noaa": noaa_status(row, now, settings),
            "schedule": "inferred" if sch and sch.source == "inferred" else ("yes" if sch else None),
        })
    return out


# --- the spine's gap question ---------------------------------------------------------------------------


def spine_gaps(
    conn: sqlite3.Connection, start: float, end: float, codes: Sequence[str] | None, now: float | None,
    settings: ScheduleSettings | None = None,
) -> dict[str, dict[str, Any]] | None:
    """Question 2 for scheduled stations (gap = missing slots), shaped like the spine's answer;
    None when the schedule tables do not exist in this store."""
    if not tables_exist(conn):
        return None
    settings = settings or ScheduleSettings()
    horizon = end if now is None else now
    out = {}
    for st in stations_missing(conn, start, end, horizon, settings, codes):
        out[st["station"]] = {
            "station": st["station"], "interval_s": st["interval_s"], "interval_source": "schedule",
            "gaps": [{"start": g["start"], "end": g["end"], "missing": g["slots"], "open": g["open"]}
                     for g in st["runs"]],
            "missing": st["missing"],
        }
    return out


def scheduled_among(conn: sqlite3.Connection, codes: Sequence[str]) -> set[str]:
    """Which of ``codes`` have a schedule (their entry-spacing gaps give way to missing slots)."""
    out: set[str] = set()
    codes = list(codes)
    for i in range(0, len(codes), 500):
        chunk = codes[i:i + 500]
        out.update(r[0] for r in conn.execute(
            "SELECT s.code FROM stations s JOIN sched_station ss ON ss.station_id = s.id "
            f"WHERE ss.interval_s IS NOT NULL AND s.code IN ({_marks(len(chunk))})", chunk))
    return out
