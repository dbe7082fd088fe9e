"""The read side of the SQLite store: the five questions and the listings.

Every query here is answered from an index range or the per-station state columns, in time
proportional to the answer, never by scanning all history.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from telmon import gaps as gapmath
from telmon.schedule import reads as schedule_reads


def _loads(text: str | None) -> Any:
    return orjson.loads(text) if text else {}


def _marks(n: int) -> str:
    return ",".join("?" * n)


_STATION_COLUMNS = (
    "code, kind, name, lat, lon, meta, registered, interval_s, inferred_interval_s, created_at, "
    "first_arrival_at, last_arrival_at, arrival_count, first_entry_at, last_entry_at, entry_count, last_feed"
)


def _station_row(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    keys = [k.strip() for k in _STATION_COLUMNS.split(",")]
    d = dict(zip(keys, row))
    d["meta"] = _loads(d["meta"])
    d["registered"] = bool(d["registered"])
    return d


class SQLiteReads:
    gap_tolerance: float

    def _read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:  # provided by SQLiteStore
        raise NotImplementedError

    # --- question 1 -------------------------------------------------------------
    def stations_updated(self, start: float, end: float) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT s.code, s.name, count(*), min(a.received_at), max(a.received_at), group_concat(DISTINCT a.feed) "
                "FROM arrivals a JOIN stations s ON s.id = a.station_id "
                "WHERE a.received_at >= ? AND a.received_at < ? GROUP BY a.station_id ORDER BY s.code",
                (start, end),
            ).fetchall()
        return [
            {"station": r[0], "name": r[1], "arrivals": r[2], "first_arrival": r[3], "last_arrival": r[4],
             "feeds": sorted((r[5] or "").split(",")) if r[5] else []}
            for r in rows
        ]

    # --- question 2 -------------------------------------------------------------
    def station_gaps(
        self, start: float, end: float, stations: Sequence[str] | None = None, *, now: float | None = None
    ) -> list[dict[str, Any]]:
        """Stations with gaps overlapping [start, end): every gap, plus the open gap since the last
        entry when the station has entries in the span and none since (up to min(end, now))."""
        where, params = "", []
        if stations:
            where = f" AND s.code IN ({_marks(len(stations))})"
            params = list(stations)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT s.code, g.gap_start, g.gap_end, g.missing FROM gaps g JOIN stations s ON s.id = g.station_id "
                f"WHERE g.gap_end > ? AND g.gap_start < ?{where} ORDER BY s.code, g.gap_start",
                [start, end, *params],
            ).fetchall()
            horizon = end if now is None else min(end, now)
            tails = conn.execute(
                "SELECT code, last_entry_at, coalesce(interval_s, inferred_interval_s), interval_s IS NOT NULL "
                f"FROM stations s WHERE last_entry_at >= ? AND last_entry_at < ?{where}",
                [start, horizon, *params],
            ).fetchall()
            info = {
                r[0]: (r[1], bool(r[2]))
                for r in conn.execute(
                    "SELECT code, coalesce(interval_s, inferred_interval_s), interval_s IS NOT NULL FROM stations s "
                    f"WHERE code IN ({_marks(len({r[0] for r in rows}))})",
                    sorted({r[0] for r in rows}),
                )
            } if rows else {}
            # Stations with a schedule answer in missing slots instead of entry spacing (issue 4).
            scheduled = schedule_reads.spine_gaps(conn, start, end, stations, now)
            skip = schedule_reads.scheduled_among(conn, sorted({r[0] for r in rows} | {r[0] for r in tails})) \
                if scheduled is not None else set()
        out: dict[str, dict[str, Any]] = dict(scheduled or {})
        for code, a, b, n in rows:
            if code in skip:
                continue
            interval, configured = info.get(code, (None, False))
            st = out.setdefault(code, _gap_station(code, interval, configured))
            st["gaps"].append({"start": a, "end": b, "missing": n, "open": False})
        for code, last, interval, configured in tails:
            if code in skip:
                continue
            tail = gapmath.trailing_gap(last, horizon, interval, self.gap_tolerance)
            if tail:
                st = out.setdefault(code, _gap_station(code, interval, bool(configured)))
                st["gaps"].append({"start": tail[0], "end": tail[1], "missing": tail[2], "open": True})
        for st in out.values():
            st["missing"] = sum(g["missing"] for g in st["gaps"])
        return [out[k] for k in sorted(out)]

    # --- question 3 -------------------------------------------------------------
    def stations_silent(self, start: float, end: float) -> list[dict[str, Any]]:
        # One index probe per station (arrivals_station), not a scan of arrivals.
        with self._read() as conn:
            rows = conn.execute(
                "SELECT s.code, s.name, s.registered, s.last_arrival_at, s.last_entry_at FROM stations s "
                "WHERE NOT EXISTS (SELECT 1 FROM arrivals a WHERE a.station_id = s.id "
                "AND a.received_at >= ? AND a.received_at < ?) ORDER BY s.code",
                (start, end),
            ).fetchall()
        return [
            {"station": r[0], "name": r[1], "registered": bool(r[2]), "last_arrival": r[3], "last_entry": r[4],
             "never_seen": r[3] is None}
            for r in rows
        ]

    # --- question 4 -------------------------------------------------------------
    def arrivals(
        self, stations: Sequence[str], start: float | None, end: float | None, *, limit: int,
        after: tuple[float, int] | None = None,
    ) -> list[dict[str, Any]]:
        clauses, params = [f"s.code IN ({_marks(len(stations))})"], list(stations)
        if start is not None:
            clauses.append("a.received_at >= ?")
            params.append(start)
        if end is not None:
            clauses.append("a.received_at < ?")
            params.append(end)
        if after is not None:
            clauses.append("(a.received_at > ? OR (a.received_at = ? AND a.id > ?))")
            params += [after[0], after[0], after[1]]
        with self._read() as conn:
            rows = conn.execute(
                "SELECT a.id, s.code, a.received_at, f.path, a.feed, a.format, a.message_time, a.first_observed, "
                "a.last_observed, a.entry_count, a.meta FROM arrivals a JOIN stations s ON s.id = a.station_id "
                f"LEFT JOIN files f ON f.id = a.file_id WHERE {' AND '.join(clauses)} "
                "ORDER BY a.received_at, a.id LIMIT ?",
                [*params, limit],
            ).fetchall()
        return [
            {"id": r[0], "station": r[1], "received_at": r[2], "path": r[3], "feed": r[4], "format": r[5],
             "message_time": r[6], "first_observed": r[7], "last_observed": r[8], "entries": r[9],
             "meta": _loads(r[10])}
            for r in rows
        ]

    # --- question 5 -------------------------------------------------------------
    def entries(
        self, stations: Sequence[str], start: float | None, end: float | None, *, limit: int,
        after: tuple[str, float] | None = None,
    ) -> list[dict[str, Any]]:
        clauses, params = [f"s.code IN ({_marks(len(stations))})"], list(stations)
        if start is not None:
            clauses.append("e.observed_at >= ?")
            params.append(start)
        if end is not None:
            clauses.append("e.observed_at < ?")
            params.append(end)
        if after is not None:
            clauses.append("(s.code > ? OR (s.code = ? AND e.observed_at > ?))")
            params += [after[0], after[0], after[1]]
        with self._read() as conn:
            rows = conn.execute(
                "SELECT s.code, e.observed_at, e.vals, e.first_seen_at, e.first_arrival_id, e.last_arrival_id "
                "FROM entries e JOIN stations s ON s.id = e.station_id "
                f"WHERE {' AND '.join(clauses)} ORDER BY s.code, e.observed_at LIMIT ?",
                [*params, limit],
            ).fetchall()
        return [
            {"station": r[0], "observed_at": r[1], "values": _loads(r[2]), "first_seen_at": r[3],
             "first_arrival_id": r[4], "last_arrival_id": r[5]}
            for r in rows
        ]

    # --- listings ----------------------------------------------------------------
    def stations(self, *, search: str | None = None, limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
        where, params = "", []
        if search:
            where = "WHERE code LIKE ? OR name LIKE ?"
            params = [f"%{search}%", f"%{search}%"]
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_STATION_COLUMNS} FROM stations {where} ORDER BY code LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
        return [_station_row(r) for r in rows]

    def station(self, code: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(f"SELECT {_STATION_COLUMNS} FROM stations WHERE code = ?", (code,)).fetchone()
        return None if row is None else _station_row(row)

    def rejected(self, *, since: float | None = None, limit: int = 100) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT r.id, r.path, r.feed, r.origin, r.received_at, r.format, r.reason, r.line, r.byte_offset, "
                "f.status, f.quarantined_to FROM rejections r LEFT JOIN files f ON f.id = r.file_id "
                "WHERE r.received_at >= ? ORDER BY r.received_at DESC, r.id DESC LIMIT ?",
                (since if since is not None else float("-inf"), limit),
            ).fetchall()
        return [
            {"id": r[0], "path": r[1], "feed": r[2], "origin": r[3], "received_at": r[4], "format": r[5],
             "reason": r[6], "line": r[7], "offset": r[8], "file_status": r[9], "quarantined_to": r[10]}
            for r in rows
        ]

    def recent_arrivals(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT a.id, s.code, a.received_at, f.path, a.feed, a.format, a.entry_count FROM arrivals a "
                "JOIN stations s ON s.id = a.station_id LEFT JOIN files f ON f.id = a.file_id "
                "ORDER BY a.id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            {"id": r[0], "station": r[1], "received_at": r[2], "path": r[3], "feed": r[4], "format": r[5],
             "entries": r[6]}
            for r in rows
        ]

    def recent_files(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT f.id, f.path, f.version, f.received_at, f.feed, f.format, f.status, f.arrivals, f.entries, "
                "f.reason, (SELECT group_concat(DISTINCT s.code) FROM arrivals a JOIN stations s ON s.id = a.station_id "
                "WHERE a.file_id = f.id) FROM files f ORDER BY f.id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            {"id": r[0], "path": r[1], "version": r[2], "received_at": r[3], "feed": r[4], "format": r[5],
             "status": r[6], "arrivals": r[7], "entries": r[8], "reason": r[9],
             "stations": sorted(r[10].split(",")) if r[10] else []}
            for r in rows
        ]

    def counts(self) -> dict[str, int]:
        with self._read() as conn:
            files, rejected_files = conn.execute(
                "SELECT count(*), coalesce(sum(status = 'rejected'), 0) FROM files"
            ).fetchone()
            stations, entries, arrivals = conn.execute(
                "SELECT count(*), coalesce(sum(entry_count), 0), coalesce(sum(arrival_count), 0) FROM stations"
            ).fetchone()
            rejections = conn.execute("SELECT count(*) FROM rejections").fetchone()[0]
        return {"files": files, "rejected_files": rejected_files, "stations": stations, "entries": entries,
                "arrivals": arrivals, "rejections": rejections}

    def iter_files(self) -> Iterator[dict[str, Any]]:
        with self._read() as conn:
            for r in conn.execute("SELECT id, path, version, sha256, status, arrivals, entries FROM files ORDER BY id"):
                yield {"id": r[0], "path": r[1], "version": r[2], "sha256": r[3], "status": r[4], "arrivals": r[5],
                       "entries": r[6]}


def _gap_station(code: str, interval: float | None, configured: bool) -> dict[str, Any]:
    return {"station": code, "interval_s": interval, "interval_source": "configured" if configured else "inferred",
            "gaps": [], "missing": 0}
