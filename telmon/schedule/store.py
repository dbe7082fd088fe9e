"""The slot store: schedule tables (migration component ``schedule``), the record hook that keeps
them current inside the ingest transaction, registry writes and rebuilds.

Per station, ``sched_station`` holds the schedule and the ledger state (oldest and newest filled
slot, counters, last report); ``sched_gap`` holds runs of missing slots, each inside one UTC day;
``sched_late`` holds T/U slots.  On-time slots and the trailing run of missing slots after the
newest report are implied (see slots.py), so a steady station costs one row update per report.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from telmon.errors import NotFound, SchemaTooNew
from telmon.model import Unit
from telmon.schedule.registry import Registry, RegistryStation
from telmon.schedule.settings import ScheduleSettings
from telmon.schedule.slots import (
    DAY,
    ON_TIME,
    MemoryMarks,
    Schedule,
    SlotState,
    cached_schedule,
    classify,
    infer_schedule,
    message_duration,
    record,
)
from telmon.store.base import FileRecord, StationInfo

log = logging.getLogger("telmon.schedule")

COMPONENT = "schedule"
SCHEDULE_STEPS: list[str] = [
    # 1: schedules and ledger state, missing runs, late slots
    """
    CREATE TABLE sched_station (
        station_id INTEGER PRIMARY KEY,
        interval_s REAL,
        first_s REAL,
        window_s REAL,
        baud INTEGER,
        source TEXT,
        timed_by TEXT,
        origin_t REAL,
        last_t REAL,
        last_code TEXT,
        next_t REAL,
        next_end REAL,
        missing INTEGER NOT NULL DEFAULT 0,
        late INTEGER NOT NULL DEFAULT 0,
        first_report_at REAL,
        last_report_at REAL,
        last_received_at REAL,
        reports INTEGER NOT NULL DEFAULT 0,
        infer_at INTEGER NOT NULL DEFAULT 8
    );
    CREATE INDEX sched_station_next ON sched_station(next_t);
    CREATE INDEX sched_station_report ON sched_station(last_report_at);
    CREATE TABLE sched_gap (
        station_id INTEGER NOT NULL,
        start_t REAL NOT NULL,
        end_t REAL NOT NULL,
        missing INTEGER NOT NULL,
        PRIMARY KEY (station_id, start_t)
    ) WITHOUT ROWID;
    -- covering for the cross-station questions (the primary key columns ride along)
    CREATE INDEX sched_gap_start ON sched_gap(start_t, end_t, missing);
    CREATE TABLE sched_late (
        station_id INTEGER NOT NULL,
        slot_t REAL NOT NULL,
        code TEXT NOT NULL,
        message_t REAL,
        PRIMARY KEY (station_id, slot_t)
    ) WITHOUT ROWID;
    -- Stations recorded before this component existed: their last report is their last entry;
    -- `telmon schedule rebuild` replays their history into slots.
    INSERT INTO sched_station(station_id, first_report_at, last_report_at, last_received_at, reports)
        SELECT id, first_entry_at, last_entry_at, last_arrival_at, entry_count FROM stations;
    """,
]

_COLUMNS = ("station_id", "interval_s", "first_s", "window_s", "baud", "source", "timed_by", "origin_t", "last_t",
            "last_code", "next_t", "next_end", "missing", "late", "first_report_at", "last_report_at",
            "last_received_at", "reports", "infer_at")
SELECT_COLUMNS = ", ".join(f"ss.{c}" for c in _COLUMNS)


def _split(script: str) -> list[str]:
    statements, buf = [], ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    return statements


def ensure_schema(store: Any) -> int:
    """Bring the store's ``schedule`` tables up to date (in one write transaction per step);
    returns the version found.  Safe to call on every start."""
    with store.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_versions WHERE component = ?", (COMPONENT,)).fetchone()
        current = row[0] if row else 0
        if current > len(SCHEDULE_STEPS):
            raise SchemaTooNew(COMPONENT, current, len(SCHEDULE_STEPS), url=getattr(store, "url", None))
        for version in range(current + 1, len(SCHEDULE_STEPS) + 1):
            for statement in _split(SCHEDULE_STEPS[version - 1]):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_versions(component, version) VALUES (?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version = excluded.version", (COMPONENT, version))
    return current


# --- one station's row ---------------------------------------------------------------------------


@dataclass(slots=True)
class StationRow:
    station_id: int
    schedule: Schedule | None = None
    timed_by: str | None = None
    state: SlotState = field(default_factory=SlotState)
    first_report_at: float | None = None
    last_report_at: float | None = None
    last_received_at: float | None = None
    reports: int = 0
    infer_at: int = 8

    @classmethod
    def from_row(cls, r: Sequence[Any]) -> StationRow:
        d = dict(zip(_COLUMNS, r))
        sched = None
        if d["interval_s"]:
            sched = cached_schedule(d["interval_s"], d["first_s"] or 0.0, d["window_s"] or 0.0, d["baud"],
                                    d["source"] or "registry")
        state = SlotState()
        if sched is not None and d["origin_t"] is not None and d["last_t"] is not None:
            state = SlotState(sched.index(d["origin_t"]), sched.index(d["last_t"]), d["last_code"], d["missing"], d["late"])
        return cls(d["station_id"], sched, d["timed_by"], state, d["first_report_at"], d["last_report_at"],
                   d["last_received_at"], d["reports"], d["infer_at"])

    def values(self) -> tuple[Any, ...]:
        s, st = self.schedule, self.state
        has = s is not None and st.origin is not None and st.last is not None
        return (
            self.station_id, s.interval if s else None, s.first if s else None, s.window if s else None,
            s.baud if s else None, s.source if s else None, self.timed_by,
            s.start(st.origin) if has else None, s.start(st.last) if has else None,  # type: ignore[union-attr,arg-type]
            st.last_code if has else None,
            s.start(st.last + 1) if has else None, s.end(st.last + 1) if has else None,  # type: ignore[union-attr,operator]
            st.missing, st.late, self.first_report_at, self.last_report_at, self.last_received_at, self.reports,
            self.infer_at,
        )


def load_row(conn: sqlite3.Connection, sid: int) -> StationRow | None:
    r = conn.execute(f"SELECT {SELECT_COLUMNS} FROM sched_station ss WHERE ss.station_id = ?", (sid,)).fetchone()
    return None if r is None else StationRow.from_row(r)


_UPSERT = (
    f"INSERT INTO sched_station({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    f"ON CONFLICT(station_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _COLUMNS[1:])}"
)


def save_row(conn: sqlite3.Connection, row: StationRow) -> None:
    conn.execute(_UPSERT, row.values())


# --- marks in the store ----------------------------------------------------------------------------


def load_marks(conn: sqlite3.Connection, row: StationRow, t_lo: float, t_hi: float) -> MemoryMarks:
    """The station's stored marks around [t_lo, t_hi]: every run and late slot a report in that
    span can touch (a report is matched to a slot starting within half an interval of it)."""
    sch = row.schedule
    assert sch is not None
    marks = MemoryMarks(sch)
    if row.state.missing:
        d0 = math.floor((t_lo - sch.interval) / DAY) * DAY
        d1 = (math.floor((t_hi + sch.interval) / DAY) + 1) * DAY
        for start_t, end_t in conn.execute(
            "SELECT start_t, end_t FROM sched_gap WHERE station_id = ? AND start_t >= ? AND start_t < ?",
            (row.station_id, d0, d1),
        ):
            marks.load_run(sch.index(start_t), sch.index(end_t))
    if row.state.late:
        for slot_t, code, message_t in conn.execute(
            "SELECT slot_t, code, message_t FROM sched_late WHERE station_id = ? AND slot_t >= ? AND slot_t <= ?",
            (row.station_id, t_lo - sch.interval, t_hi + sch.interval),
        ):
            marks.load_late(sch.index(slot_t), code, message_t)
    return marks


def flush_marks(conn: sqlite3.Connection, sid: int, marks: MemoryMarks) -> None:
    sch = marks.schedule
    if marks.removed_runs:
        conn.executemany("DELETE FROM sched_gap WHERE station_id = ? AND start_t = ?",
                         [(sid, sch.start(n)) for n in marks.removed_runs])
    if marks.added_runs:
        conn.executemany(
            "INSERT OR REPLACE INTO sched_gap(station_id, start_t, end_t, missing) VALUES (?,?,?,?)",
            [(sid, sch.start(n0), sch.start(n1), n1 - n0 + 1) for n0, n1 in marks.added_runs.items()],
        )
    if marks.dropped_late:
        conn.executemany("DELETE FROM sched_late WHERE station_id = ? AND slot_t = ?",
                         [(sid, sch.start(n)) for n in marks.dropped_late])
    if marks.put_late:
        conn.executemany(
            "INSERT OR REPLACE INTO sched_late(station_id, slot_t, code, message_t) VALUES (?,?,?,?)",
            [(sid, sch.start(n), code, t) for n, (code, t) in marks.put_late.items()],
        )
    marks.removed_runs.clear()
    marks.added_runs.clear()
    marks.dropped_late.clear()
    marks.put_late.clear()


def apply_reports(conn: sqlite3.Connection, row: StationRow, reports: Sequence[tuple[float, float]]) -> int:
    """Match (time, duration) reports to the station's slots and store what changed; returns
    how many of them were not on time (-1 when the station has no schedule)."""
    sch = row.schedule
    if sch is None or not reports:
        return -1
    times = [t for t, _ in reports]
    marks = load_marks(conn, row, min(times), max(times))
    off = 0
    for t, d in reports:
        n, code = classify(sch, t, d)
        if code != ON_TIME:
            off += 1
        record(row.state, marks, n, code, t)
    flush_marks(conn, row.station_id, marks)
    return off


# --- history ------------------------------------------------------------------------------------------


def history_reports(conn: sqlite3.Connection, row: StationRow, *, limit: int | None = None) -> list[tuple[float, float]]:
    """The station's reports from its stored history (newest ``limit`` if given), oldest first."""
    baud = row.schedule.baud if row.schedule else None
    if row.timed_by == "message":
        sql = ("SELECT message_time, byte_length, format FROM arrivals WHERE station_id = ? AND message_time IS NOT NULL "
               "AND coalesce(json_extract(meta, '$.failure_code'), '') != 'M'")
        if limit:
            sql += f" ORDER BY received_at DESC LIMIT {int(limit)}"
        out = [(t, message_duration(n, baud) if fmt == "lrgs" else 0.0) for t, n, fmt in conn.execute(sql, (row.station_id,))]
    elif row.timed_by == "entry":
        sql = "SELECT observed_at FROM entries WHERE station_id = ?"
        if limit:
            sql += f" ORDER BY observed_at DESC LIMIT {int(limit)}"
        out = [(t, 0.0) for (t,) in conn.execute(sql, (row.station_id,))]
    else:
        return []
    out.sort()
    return out


def rebuild(conn: sqlite3.Connection, row: StationRow) -> None:
    """Recompute one station's slots from its whole stored history (after its schedule changed).
    Reads one station's arrivals or entries once; never runs at query time."""
    conn.execute("DELETE FROM sched_gap WHERE station_id = ?", (row.station_id,))
    conn.execute("DELETE FROM sched_late WHERE station_id = ?", (row.station_id,))
    row.state = SlotState()
    if row.schedule is None:
        return
    marks = MemoryMarks(row.schedule)
    for t, d in history_reports(conn, row):
        n, code = classify(row.schedule, t, d)
        record(row.state, marks, n, code, t)
    flush_marks(conn, row.station_id, marks)


def set_schedule(conn: sqlite3.Connection, row: StationRow, schedule: Schedule | None) -> bool:
    """Give the station ``schedule`` (None: none); True if it changed (its slots are rebuilt)."""
    if schedule is None and row.schedule is None:
        return False
    if schedule is not None and schedule.same_as(row.schedule):
        if row.schedule is not None and row.schedule.source != schedule.source:
            row.schedule = schedule  # same slots, new provenance: nothing to rebuild
            return True
        return False
    row.schedule = schedule
    rebuild(conn, row)
    return True


# --- the record hook -----------------------------------------------------------------------------------


class SlotRecorder:
    """``SQLiteStore.record_hooks`` entry: runs inside the write transaction after each file."""

    def __init__(self, settings: ScheduleSettings | None = None) -> None:
        self.settings = settings or ScheduleSettings()

    def __call__(self, conn: sqlite3.Connection, rec: FileRecord, file_id: int,
                 arrivals: list[tuple[int, int, Unit]]) -> None:
        by_station: dict[int, list[Unit]] = {}
        for _arrival_id, sid, unit in arrivals:
            by_station.setdefault(sid, []).append(unit)
        for sid, units in by_station.items():
            self._station(conn, sid, rec, units)

    def _station(self, conn: sqlite3.Connection, sid: int, rec: FileRecord, units: list[Unit]) -> None:
        row = load_row(conn, sid) or StationRow(sid, infer_at=max(1, self.settings.infer_min))
        baud = row.schedule.baud if row.schedule else None
        reports: list[tuple[float, float]] = []
        for unit in units:
            if unit.meta.get("failure_code") == "M":
                continue  # an LRGS "missing message" status: nothing was received
            if unit.message_time is not None:
                row.timed_by = row.timed_by or "message"
                dur = message_duration(unit.length, baud) if rec.format == "lrgs" else 0.0
                reports.append((unit.message_time, dur))
            else:
                row.timed_by = row.timed_by or "entry"
                reports.extend((e.observed_at, 0.0) for e in unit.entries)
        row.last_received_at = max(row.last_received_at or rec.received_at, rec.received_at)
        if reports:
            times = [t for t, _ in reports]
            row.reports += len(reports)
            row.first_report_at = min(row.first_report_at if row.first_report_at is not None else min(times), min(times))
            row.last_report_at = max(row.last_report_at if row.last_report_at is not None else max(times), max(times))
            off = apply_reports(conn, row, reports)
            if self.settings.infer_min and (row.schedule is None or row.schedule.source == "inferred") \
                    and row.reports >= row.infer_at:
                if off == 0:
                    # Every report fits the inferred schedule: nothing to re-infer; check again later.
                    row.infer_at = row.reports + min(max(row.reports, self.settings.infer_min), 4096)
                else:
                    self._infer(conn, row)
        save_row(conn, row)

    def _infer(self, conn: sqlite3.Connection, row: StationRow) -> None:
        # Re-check at doubling report counts (capped): a station that changed rhythm is
        # re-inferred without paying for inference on every report.
        row.infer_at = row.reports + min(max(row.reports, self.settings.infer_min), 4096)
        recent = history_reports(conn, row, limit=64)
        durations = [d for _, d in recent]
        sched = infer_schedule([t for t, _ in recent], statistics.median(durations) if durations else 0.0,
                               min_reports=self.settings.infer_min)
        if sched is None:
            return
        old = row.schedule
        if old is not None:
            shift = (sched.phase - old.phase + old.interval / 2) % old.interval - old.interval / 2
            if old.interval == sched.interval and abs(shift) <= max(old.window / 2, 1.0):
                return
        log.info("station %d: inferred schedule every %gs from %gs, window %gs", row.station_id, sched.interval,
                 sched.first, sched.window)
        set_schedule(conn, row, sched)


# --- registry writes ------------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportResult:
    path: str
    format: str
    created: int = 0
    updated: int = 0
    schedules_changed: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "created": self.created, "updated": self.updated,
                "schedules_changed": self.schedules_changed, "problems": self.problems}


def _station_ids(conn: sqlite3.Connection, codes: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(0, len(codes), 500):
        chunk = list(codes[i:i + 500])
        out.update(conn.execute(f"SELECT code, id FROM stations WHERE code IN ({','.join('?' * len(chunk))})", chunk))
    return out


def write_stations(store: Any, stations: Iterable[RegistryStation], *, now: float,
                   settings: ScheduleSettings | None = None) -> tuple[int, int, int]:
    """Create or update stations and their schedules; (created, updated, schedules changed).

    Station facts go through the store's own ``upsert_stations``; schedules follow in one more
    transaction (a crash between the two is repaired by importing again: both are idempotent).
    """
    stations = list(stations)
    if not stations:
        return 0, 0, 0
    # The last line for a code wins, as when the file is read top to bottom.
    by_code = {st.code: st for st in stations}
    with store.transaction() as conn:
        known = _station_ids(conn, list(by_code))
    store.upsert_stations(
        [StationInfo(st.code, st.kind, st.name, st.lat, st.lon, st.schedule.interval if st.schedule else None,
                     st.meta) for st in by_code.values()],
        now=now,
    )
    changed = 0
    infer_min = max(1, (settings or ScheduleSettings()).infer_min)
    with store.transaction() as conn:
        ids = _station_ids(conn, list(by_code))
        for code, st in by_code.items():
            row = load_row(conn, ids[code]) or StationRow(ids[code], infer_at=infer_min)
            new = st.schedule
            if new is None and row.schedule is not None and row.schedule.source == "inferred":
                new = row.schedule  # the registry knows no schedule: keep what history showed
            if set_schedule(conn, row, new):
                changed += 1
            save_row(conn, row)
    created = len(by_code) - len(known)
    return created, len(known), changed


def import_registry(store: Any, registry: Registry, *, now: float, settings: ScheduleSettings | None = None) -> ImportResult:
    created, updated, changed = write_stations(store, registry.stations, now=now, settings=settings)
    return ImportResult(registry.path, registry.format, created, updated, changed, [str(p) for p in registry.problems])


def edit_station(
    store: Any, code: str, *, now: float, name: str | None = None, lat: float | None = None, lon: float | None = None,
    interval: float | None = None, first: float | None = None, window: float | None = None, clear_schedule: bool = False,
) -> dict[str, Any]:
    """Change a station's facts or schedule by hand (schedule source ``manual``).

    Raises NotFound for an unknown station, BadRequest (via ValueError) for an impossible schedule.
    """
    with store.transaction() as conn:
        r = conn.execute("SELECT id, kind, meta FROM stations WHERE code = ?", (code,)).fetchone()
        if r is None:
            raise NotFound("station", code)
        sid, kind, meta = r
        row = load_row(conn, sid) or StationRow(sid)
    sched = row.schedule
    if clear_schedule:
        sched = None
    elif interval is not None or first is not None or window is not None:
        base = sched or Schedule(interval or 3600.0, 0.0, 0.0)
        sched = Schedule(interval if interval is not None else base.interval,
                         first if first is not None else base.first,
                         window if window is not None else base.window, base.baud, "manual")
    store.upsert_stations(
        [StationInfo(code, kind, name, lat, lon, sched.interval if sched else None, orjson.loads(meta or "{}"))], now=now
    )
    with store.transaction() as conn:
        row = load_row(conn, sid) or StationRow(sid)
        set_schedule(conn, row, sched)
        save_row(conn, row)
    return {"station": code, "schedule": schedule_dict(sched)}


def rebuild_all(store: Any, codes: Sequence[str] | None = None) -> int:
    """Replay stored history into slots for ``codes`` (all stations when None): an explicit,
    one-off repair after importing data recorded before this component was installed."""
    n = 0
    with store.transaction() as conn:
        if codes:
            ids = list(_station_ids(conn, list(codes)).values())
        else:
            ids = [r[0] for r in conn.execute("SELECT id FROM stations")]
        for sid in ids:
            row = load_row(conn, sid) or StationRow(sid)
            if row.timed_by is None:
                kinds = conn.execute(
                    "SELECT count(message_time), count(*) FROM arrivals WHERE station_id = ?", (sid,)
                ).fetchone()
                row.timed_by = "message" if kinds[0] else ("entry" if kinds[1] else None)
            rebuild(conn, row)
            save_row(conn, row)
            n += 1
    return n


def schedule_dict(s: Schedule | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"interval_s": s.interval, "first_s": s.first, "window_s": s.window, "baud": s.baud, "source": s.source,
            "inferred": s.source == "inferred"}
