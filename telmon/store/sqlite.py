"""The embedded SQLite store (stdlib sqlite3, WAL): one writer, many readers.

Writes go through one connection guarded by a lock (the ingest worker is the only steady
writer); each reading thread gets its own connection so WAL lets it read while a write runs.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from telmon import gaps as gapmath
from telmon.errors import StoreError
from telmon.model import IngestResult, Unit
from telmon.store import sqlite_reads
from telmon.store.base import FileRecord, StationInfo
from telmon.store.migrate import migrate
from telmon.store.sqlite_schema import CORE_STEPS

# How many recent entries the inferred interval is taken from.
_INFER_WINDOW = 64

# Called inside the write transaction after each file is recorded, with the writer connection,
# the record, its file id and (arrival_id, station_id, unit) per arrival.  Capabilities that must
# change in the same transaction as the arrival (schedule slots, an outbox) plug in here.
RecordHook = Callable[[sqlite3.Connection, FileRecord, int, list[tuple[int, int, Unit]]], None]


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


class SQLiteStore(sqlite_reads.SQLiteReads):
    """A Store on one SQLite file (or ``:memory:``)."""

    def __init__(
        self, path: str | Path, *, gap_tolerance: float = gapmath.DEFAULT_TOLERANCE, checkpoint_interval: float = 1.0
    ) -> None:
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        self.gap_tolerance = gap_tolerance
        self._memory = self.path == ":memory:"
        if not self._memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        try:
            self._writer = self._connect()
            migrate(self._writer, "core", CORE_STEPS)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}", url=self.url) from exc
        self._stop_checkpoints = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if not self._memory and checkpoint_interval > 0:
            # Checkpoints copy the WAL into the database and fsync it: done by the writer on
            # commit (the default) they stall ingest; a thread of its own does them instead.
            self._writer.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, args=(checkpoint_interval,), name="telmon-checkpoint", daemon=True
            )
            self._checkpointer.start()
        self._station_ids: dict[str, int] = {}
        self.record_hooks: list[RecordHook] = []

    # --- connections ------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a power cut may lose the last commits but never corrupts;
        # a killed process loses nothing that was committed.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA cache_size=-65536")
        return conn

    def _reader(self) -> sqlite3.Connection:
        if self._memory:
            return self._writer
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        if self._memory:
            with self._lock:
                yield self._writer
        else:
            yield self._reader()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The writer connection inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error)."""
        with self._lock:
            if self._closed:
                raise StoreError("store is closed", url=self.url)
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"cannot start a write on {self.path}: {exc}", url=self.url) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                # ids cached during the failed transaction may not exist any more
                self._station_ids.clear()
                if isinstance(exc, sqlite3.OperationalError):
                    raise StoreError(f"write to {self.path} failed: {exc}", url=self.url) from exc
                raise

    def _checkpoint_loop(self, interval: float) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        try:
            while not self._stop_checkpoints.wait(interval):
                try:
                    # PASSIVE never waits for the writer or readers: it copies what it can.
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:
                    logging.getLogger("telmon.store").warning("WAL checkpoint of %s failed: %s", self.path, exc)
        finally:
            conn.close()

    def close(self) -> None:
        self._stop_checkpoints.set()
        if self._checkpointer is not None:
            self._checkpointer.join(30)
            self._checkpointer = None
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for conn in self._readers:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._readers.clear()
            with contextlib.suppress(sqlite3.Error):
                self._writer.execute("PRAGMA optimize")
                self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._writer.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writes -----------------------------------------------------------------
    def new_batch(self, conn: sqlite3.Connection, kind: str, source: str | None, now: float) -> int:
        cur = conn.execute("INSERT INTO batches(kind, source, started_at) VALUES (?, ?, ?)", (kind, source, now))
        return int(cur.lastrowid or 0)

    def file_known(self, path: str, size: int, mtime_ns: int) -> bool:
        with self._read() as conn:
            row = conn.execute(
                "SELECT 1 FROM files WHERE path = ? AND size = ? AND mtime_ns = ? LIMIT 1", (path, size, mtime_ns)
            ).fetchone()
        return row is not None

    def record_files(self, records: Sequence[FileRecord], *, now: float) -> list[IngestResult]:
        if not records:
            return []
        with self.transaction() as conn:
            batch_id = self.new_batch(conn, "files", None, now)
            results = [self._record_file(conn, rec, batch_id, now) for rec in records]
            conn.execute(
                "UPDATE batches SET finished_at = ?, records = ? WHERE id = ?",
                (now, sum(r.arrivals for r in results), batch_id),
            )
        return results

    def _record_file(self, conn: sqlite3.Connection, rec: FileRecord, batch_id: int, now: float) -> IngestResult:
        row = conn.execute("SELECT id, version FROM files WHERE path = ? AND sha256 = ?", (rec.path, rec.sha256)).fetchone()
        if row is not None:
            # Same content again (a touch, a rescan): refresh the done-mark so scans skip it, record nothing.
            conn.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", (rec.size, rec.mtime_ns, row[0]))
            return IngestResult(rec.path, "duplicate", rec.format, version=row[1], file_id=row[0])
        version = conn.execute("SELECT coalesce(max(version), 0) + 1 FROM files WHERE path = ?", (rec.path,)).fetchone()[0]
        reason = "; ".join(f"{p.reason} ({p.where()})" if p.where() else p.reason for p in rec.problems[:5]) or None
        if len(rec.problems) > 5:
            reason = f"{reason}; and {len(rec.problems) - 5} more"
        cur = conn.execute(
            "INSERT INTO files(path, version, sha256, size, mtime_ns, received_at, recorded_at, feed, format, "
            "status, reason, batch_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (rec.path, version, rec.sha256, rec.size, rec.mtime_ns, rec.received_at, now, rec.feed, rec.format,
             rec.status, reason, batch_id),
        )
        file_id = int(cur.lastrowid or 0)
        if rec.problems:
            conn.executemany(
                "INSERT INTO rejections(file_id, path, feed, origin, received_at, format, reason, line, byte_offset, "
                "batch_id) VALUES (?,?,?,'file',?,?,?,?,?,?)",
                [(file_id, rec.path, rec.feed, rec.received_at, rec.format, p.reason, p.line, p.offset, batch_id)
                 for p in rec.problems],
            )
        n_entries = 0
        arrivals: list[tuple[int, int, Unit]] = []
        for unit in rec.units:
            arrival_id, sid, n_new = self._record_unit(conn, unit, rec, file_id, batch_id)
            n_entries += n_new
            arrivals.append((arrival_id, sid, unit))
        for hook in self.record_hooks:
            hook(conn, rec, file_id, arrivals)
        conn.execute(
            "UPDATE files SET arrivals = ?, entries = ? WHERE id = ?", (len(rec.units), n_entries, file_id)
        )
        return IngestResult(
            rec.path, rec.status, rec.format, arrivals=len(rec.units), entries=n_entries, version=version,
            reasons=[f"{p.reason} ({p.where()})" if p.where() else p.reason for p in rec.problems],
            file_id=file_id,
        )

    def _station_id(self, conn: sqlite3.Connection, code: str, now: float) -> int:
        sid = self._station_ids.get(code)
        if sid is not None:
            return sid
        row = conn.execute("SELECT id FROM stations WHERE code = ?", (code,)).fetchone()
        if row is None:
            # A station first seen in data: created on the fly, flagged unregistered.
            cur = conn.execute("INSERT INTO stations(code, created_at) VALUES (?, ?)", (code, now))
            sid = int(cur.lastrowid or 0)
        else:
            sid = int(row[0])
        self._station_ids[code] = sid
        return sid

    def _record_unit(
        self, conn: sqlite3.Connection, unit: Unit, rec: FileRecord, file_id: int, batch_id: int
    ) -> tuple[int, int, int]:
        """Insert one arrival and its entries; keep the station's state and gaps current.
        Returns (arrival id, station id, how many of its entries were new (station, time) pairs)."""
        sid = self._station_id(conn, unit.station, rec.received_at)
        first_obs, last_obs = unit.first_observed, unit.last_observed
        cur = conn.execute(
            "INSERT INTO arrivals(station_id, received_at, file_id, feed, format, message_time, first_observed, "
            "last_observed, entry_count, byte_offset, byte_length, meta, batch_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (sid, rec.received_at, file_id, rec.feed, rec.format, unit.message_time, first_obs, last_obs,
             len(unit.entries), unit.offset, unit.length, _dumps(unit.meta) if unit.meta else None, batch_id),
        )
        arrival_id = int(cur.lastrowid or 0)
        configured, inferred, last_entry = conn.execute(
            "SELECT interval_s, inferred_interval_s, last_entry_at FROM stations WHERE id = ?", (sid,)
        ).fetchone()
        new_times: list[float] = []
        if unit.entries:
            times = [e.observed_at for e in unit.entries]
            lo, hi = min(times), max(times)
            if last_entry is None or lo > last_entry:
                new_times = sorted(set(times))  # appending past the last entry: nothing can collide
            else:
                existing = {
                    r[0] for r in conn.execute(
                        "SELECT observed_at FROM entries WHERE station_id = ? AND observed_at BETWEEN ? AND ?",
                        (sid, lo, hi),
                    )
                }
                new_times = sorted({t for t in times if t not in existing})
            # The newest value wins when the unit may overwrite (EDL //OVERWRITE true), else the
            # first stored one stays; None values never erase a stored value.
            merge = "json_patch(entries.vals, ?7)" if unit.overwrite else "json_patch(?7, entries.vals)"
            rows = []
            received = rec.received_at
            for e in unit.entries:
                values = e.values
                if not values:
                    vals = patch = "{}"
                else:
                    vals = orjson.dumps(values).decode()
                    patch = vals if None not in values.values() else _dumps(
                        {k: v for k, v in values.items() if v is not None})
                rows.append((sid, e.observed_at, vals, arrival_id, received, arrival_id, patch))
            conn.executemany(
                "INSERT INTO entries(station_id, observed_at, vals, first_arrival_id, first_seen_at, last_arrival_id) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(station_id, observed_at) DO UPDATE SET "
                f"vals = {merge}, last_arrival_id = ?6",
                rows,
            )
        conn.execute(
            "UPDATE stations SET arrival_count = arrival_count + 1, "
            "first_arrival_at = min(coalesce(first_arrival_at, ?1), ?1), "
            "last_arrival_at = max(coalesce(last_arrival_at, ?1), ?1), "
            "first_entry_at = CASE WHEN ?2 IS NULL THEN first_entry_at ELSE min(coalesce(first_entry_at, ?2), ?2) END, "
            "last_entry_at = CASE WHEN ?3 IS NULL THEN last_entry_at ELSE max(coalesce(last_entry_at, ?3), ?3) END, "
            "entry_count = entry_count + ?4, last_feed = ?5 WHERE id = ?6",
            (rec.received_at, new_times[0] if new_times else None, new_times[-1] if new_times else None,
             len(new_times), rec.feed, sid),
        )
        if new_times:
            self._update_gaps(conn, sid, new_times, configured, inferred, last_entry)
        return arrival_id, sid, len(new_times)

    def _infer(self, conn: sqlite3.Connection, sid: int, new_times: list[float], inferred: float | None,
               last_entry: float | None) -> tuple[float | None, bool]:
        """The station's inferred interval after this arrival, and whether it changed.

        Re-estimated as the median spacing of the station's last 64 entries, except when the
        arrival's own spacing (with the previous last entry) already equals the estimate: a
        station keeping its rhythm costs no query.
        """
        own = gapmath.infer_interval(([last_entry] if last_entry is not None and last_entry < new_times[0] else [])
                                     + new_times)
        if inferred is not None and own is not None and own == inferred:
            return inferred, False
        recent = [r[0] for r in conn.execute(
            "SELECT observed_at FROM entries WHERE station_id = ? ORDER BY observed_at DESC LIMIT ?",
            (sid, _INFER_WINDOW),
        )]
        recent.reverse()
        new_inferred = gapmath.infer_interval(recent)
        if new_inferred == inferred:
            return inferred, False
        conn.execute("UPDATE stations SET inferred_interval_s = ? WHERE id = ?", (new_inferred, sid))
        return new_inferred, True

    def _update_gaps(self, conn: sqlite3.Connection, sid: int, new_times: list[float], configured: float | None,
                     inferred: float | None, last_entry: float | None) -> None:
        inferred, changed = self._infer(conn, sid, new_times, inferred, last_entry)
        interval = configured or inferred
        if changed and not configured:
            self.recompute_gaps(conn, sid, interval)
            return
        first_new, last_new = new_times[0], new_times[-1]
        if last_entry is None or first_new > last_entry:
            # Appending: the only stretch that changes is from the previous last entry onwards.
            times = new_times if last_entry is None else [last_entry, *new_times]
        else:
            # Only the stretch between the new times' neighbours can change: recompute it alone.
            lo = conn.execute(
                "SELECT max(observed_at) FROM entries WHERE station_id = ? AND observed_at < ?", (sid, first_new)
            ).fetchone()[0]
            hi = conn.execute(
                "SELECT min(observed_at) FROM entries WHERE station_id = ? AND observed_at > ?", (sid, last_new)
            ).fetchone()[0]
            lo = first_new if lo is None else lo
            hi = last_new if hi is None else hi
            conn.execute("DELETE FROM gaps WHERE station_id = ? AND gap_start >= ? AND gap_start < ?", (sid, lo, hi))
            times = [r[0] for r in conn.execute(
                "SELECT observed_at FROM entries WHERE station_id = ? AND observed_at BETWEEN ? AND ? "
                "ORDER BY observed_at",
                (sid, lo, hi),
            )]
        found = gapmath.find_gaps(times, interval, self.gap_tolerance)
        if found:
            conn.executemany(
                "INSERT OR REPLACE INTO gaps(station_id, gap_start, gap_end, missing) VALUES (?,?,?,?)",
                [(sid, a, b, n) for a, b, n in found],
            )

    def recompute_gaps(self, conn: sqlite3.Connection, sid: int, interval: float | None) -> None:
        """Rebuild one station's gap table from its entries (after its interval changed)."""
        conn.execute("DELETE FROM gaps WHERE station_id = ?", (sid,))
        times = [r[0] for r in conn.execute(
            "SELECT observed_at FROM entries WHERE station_id = ? ORDER BY observed_at", (sid,)
        )]
        found = gapmath.find_gaps(times, interval, self.gap_tolerance)
        conn.executemany(
            "INSERT INTO gaps(station_id, gap_start, gap_end, missing) VALUES (?,?,?,?)",
            [(sid, a, b, n) for a, b, n in found],
        )

    def upsert_stations(self, stations: Iterable[StationInfo], *, now: float) -> int:
        n = 0
        with self.transaction() as conn:
            for st in stations:
                conn.execute(
                    "INSERT INTO stations(code, kind, name, lat, lon, meta, registered, interval_s, created_at) "
                    "VALUES (?,?,?,?,?,?,1,?,?) ON CONFLICT(code) DO UPDATE SET kind = excluded.kind, "
                    "name = coalesce(excluded.name, name), lat = coalesce(excluded.lat, lat), "
                    "lon = coalesce(excluded.lon, lon), meta = json_patch(meta, excluded.meta), registered = 1, "
                    "interval_s = coalesce(excluded.interval_s, interval_s)",
                    (st.code, st.kind, st.name, st.lat, st.lon, _dumps(st.meta), st.interval_s, now),
                )
                sid = conn.execute("SELECT id FROM stations WHERE code = ?", (st.code,)).fetchone()[0]
                if st.interval_s:
                    self.recompute_gaps(conn, sid, st.interval_s)
                n += 1
        return n

    def set_quarantined(self, file_id: int, dest: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE files SET quarantined_to = ? WHERE id = ?", (dest, file_id))

    def file_id(self, path: str, sha256: str) -> int | None:
        with self._read() as conn:
            row = conn.execute("SELECT id FROM files WHERE path = ? AND sha256 = ?", (path, sha256)).fetchone()
        return None if row is None else int(row[0])
