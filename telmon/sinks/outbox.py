"""The outbox: one row per (arrival, sink), written in the same transaction as the arrival.

A record hook (``Outbox.hook``) runs inside the store's write transaction, so an arrival and
its outbox rows commit together or not at all (DESIGN.md, "exactly once in effect"). Relays
(``amqp.AmqpRelay``, ``redis.RedisRelay``) read their sink's rows in id order, deliver them, and
delete them only once the far side has them (publisher confirm, Redis script reply). A broker
outage therefore leaves rows waiting; a crash after delivery but before the delete re-delivers
them, which consumers de-duplicate by message id and Redis by its processed-set.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from telmon.model import Unit
from telmon.store.base import FileRecord
from telmon.store.migrate import migrate
from telmon.store.sqlite import SQLiteStore

log = logging.getLogger("telmon.sinks")

COMPONENT = "outbox"
# AUTOINCREMENT: ids never go back, even when the newest rows were delivered and deleted;
# relays resume "after the last id sent", so a reused id would be skipped.
OUTBOX_STEPS: tuple[str, ...] = (
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sink TEXT NOT NULL,
        msg_id TEXT NOT NULL,
        arrival_id INTEGER,
        created_at REAL NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX outbox_by_sink ON outbox(sink, id);
    CREATE TABLE outbox_sinks (
        sink TEXT PRIMARY KEY,
        delivered INTEGER NOT NULL DEFAULT 0,
        last_delivered_at REAL,
        last_error TEXT,
        last_error_at REAL
    );
    """,
)


@dataclass(frozen=True, slots=True)
class Route:
    """Which arrivals a sink gets: those of these formats, or of these feeds ("*": every feed)."""

    sink: str
    formats: frozenset[str] = frozenset()
    feeds: frozenset[str] = frozenset()

    def wants(self, feed: str, fmt: str | None) -> bool:
        return (fmt is not None and fmt in self.formats) or feed in self.feeds or "*" in self.feeds


@dataclass(slots=True)
class OutboxRow:
    id: int
    sink: str
    msg_id: str
    arrival_id: int | None
    created_at: float
    payload: str

    def body(self) -> dict[str, Any]:
        return orjson.loads(self.payload)


def message_id(sha256: str, index: int, units: int) -> str:
    """Content-derived, so the same archive keeps its id across restarts and re-ingests:
    the archive's sha256, with ``.<n>`` for the n-th arrival of a file holding several."""
    return sha256 if units == 1 else f"{sha256}.{index}"


def arrival_message(rec: FileRecord, arrival_id: int, unit: Unit, index: int) -> dict[str, Any]:
    """The JSON body announced for one arrival (also what the Redis relay counts from)."""
    msg: dict[str, Any] = {
        "id": message_id(rec.sha256, index, len(rec.units)),
        "arrival_id": arrival_id,
        "path": rec.path,
        "size": rec.size,
        "sha256": rec.sha256,
        "received_at": rec.received_at,
        "feed": rec.feed,
        "format": rec.format,
        "station": unit.station,
        "entries": len(unit.entries),
        "first_observed": unit.first_observed,
        "last_observed": unit.last_observed,
    }
    if rec.format == "jobarchive":
        # The parsed job summary at the top, where a Test4Theory worker looks for it.
        msg["user"] = unit.meta.get("user")
        msg["job"] = unit.meta.get("job", {})
        if unit.meta.get("redacted"):
            msg["redacted"] = unit.meta["redacted"]
    else:
        msg["meta"] = unit.meta
    return msg


class Outbox:
    """The outbox tables of one SQLite store, and the record hook that fills them."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        # migrate() runs its own BEGIN IMMEDIATE ... COMMIT, so it takes the writer connection
        # under the store's lock rather than inside store.transaction().
        with store._lock:
            migrate(store._writer, COMPONENT, OUTBOX_STEPS)
        self._listeners: list[Callable[[], None]] = []

    # --- filling ------------------------------------------------------------------
    def hook(self, routes: Sequence[Route]) -> Callable[[sqlite3.Connection, FileRecord, int, list[tuple[int, int, Unit]]], None]:
        """A store record hook writing one row per (arrival, sink whose route wants it)."""
        routes = tuple(routes)

        def record_hook(conn: sqlite3.Connection, rec: FileRecord, file_id: int,
                        arrivals: list[tuple[int, int, Unit]]) -> None:
            if not arrivals:
                return  # a rejected file: it is in the rejected list, there is nothing to announce
            sinks = [r.sink for r in routes if r.wants(rec.feed, rec.format)]
            if not sinks:
                return
            rows: list[tuple[str, str, int, float, str]] = []
            for index, (arrival_id, _sid, unit) in enumerate(arrivals):
                msg = arrival_message(rec, arrival_id, unit, index)
                payload = orjson.dumps(msg).decode()
                rows.extend((sink, msg["id"], arrival_id, rec.received_at, payload) for sink in sinks)
            conn.executemany(
                "INSERT INTO outbox(sink, msg_id, arrival_id, created_at, payload) VALUES (?,?,?,?,?)", rows
            )

        record_hook.telmon_outbox = True  # type: ignore[attr-defined]  # install() refuses a second one
        return record_hook

    def add_listener(self, fn: Callable[[], None]) -> None:
        """``fn`` is called (from the committing thread) after new rows may have committed."""
        self._listeners.append(fn)

    def notify(self) -> None:
        for fn in self._listeners:
            try:
                fn()
            except Exception:  # noqa: BLE001 - a relay's wake-up must not break the ingest worker
                log.exception("outbox listener failed")

    # --- draining -----------------------------------------------------------------
    def pending(self, sink: str, *, after: int = 0, limit: int = 500) -> list[OutboxRow]:
        """The next rows of ``sink`` with id > ``after``, oldest first."""
        with self.store._read() as conn:
            rows = conn.execute(
                "SELECT id, sink, msg_id, arrival_id, created_at, payload FROM outbox "
                "WHERE sink = ? AND id > ? ORDER BY id LIMIT ?", (sink, after, limit),
            ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def delivered(self, sink: str, ids: Iterable[int], *, now: float) -> int:
        """Delete delivered rows and count them; returns how many were still there."""
        ids = list(ids)
        if not ids:
            return 0
        with self.store.transaction() as conn:
            n = 0
            for start in range(0, len(ids), 500):  # SQLite's host-parameter limit
                part = ids[start:start + 500]
                cur = conn.execute(
                    f"DELETE FROM outbox WHERE sink = ? AND id IN ({','.join('?' * len(part))})", (sink, *part)
                )
                n += cur.rowcount
            conn.execute(
                "INSERT INTO outbox_sinks(sink, delivered, last_delivered_at) VALUES (?, ?, ?) "
                "ON CONFLICT(sink) DO UPDATE SET delivered = delivered + excluded.delivered, "
                "last_delivered_at = excluded.last_delivered_at",
                (sink, n, now),
            )
        return n

    def failed(self, sink: str, error: str, *, now: float) -> None:
        """Remember why ``sink`` could not deliver (shown by ``telmon outbox status``)."""
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO outbox_sinks(sink, last_error, last_error_at) VALUES (?, ?, ?) "
                "ON CONFLICT(sink) DO UPDATE SET last_error = excluded.last_error, "
                "last_error_at = excluded.last_error_at",
                (sink, error[:500], now),
            )

    def status(self, *, now: float) -> list[dict[str, Any]]:
        """Per sink: rows waiting, age of the oldest, rows delivered so far, last error, and
        ``state`` "failing" when rows wait and the latest attempt failed, else "ok"."""
        with self.store._read() as conn:
            waiting = {
                r[0]: (r[1], r[2]) for r in conn.execute(
                    "SELECT sink, count(*), min(created_at) FROM outbox GROUP BY sink"
                )
            }
            done = {
                r[0]: r[1:] for r in conn.execute(
                    "SELECT sink, delivered, last_delivered_at, last_error, last_error_at FROM outbox_sinks"
                )
            }
        out = []
        for sink in sorted(set(waiting) | set(done)):
            pending, oldest = waiting.get(sink, (0, None))
            delivered, last_at, error, error_at = done.get(sink, (0, None, None, None))
            # failing: rows wait and the last attempt since the last delivery failed
            failing = pending > 0 and error_at is not None and (last_at is None or error_at > last_at)
            out.append({
                "sink": sink,
                "pending": pending,
                "oldest_pending_age_s": None if oldest is None else round(max(0.0, now - oldest), 3),
                "delivered": delivered,
                "last_delivered_at": last_at,
                "last_error": error,
                "last_error_at": error_at,
                "state": "failing" if failing else "ok",
            })
        return out
