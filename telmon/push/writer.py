"""The push writer: requests are acknowledged once durably staged, and fed to the rollups in bulk.

One SQLite commit per request capped ingest at ~1,500-2,500 requests/s (shared/DESIGN.md), and a
``SeriesStore.write`` costs ~85 us per series it touches plus ~3.5 us per sample (measured), so
writing each request's 100 samples on its own -- or only the few requests in flight together --
pays the per-series cost for one sample each.  Two threads, two stages:

1. **stage** (acknowledges): takes every queued request (up to ``group_max`` samples) and commits
   them in one transaction to an append-only staging file beside the store (its own SQLite file,
   so it never waits behind a long rollup write's lock).  Then the requests are answered: an
   answered sample is on disk (WAL, synchronous=NORMAL: a killed process loses nothing).
2. **feed**: takes everything staged since its last round (up to ``feed_max`` samples) and writes
   it to the store -- new hosts and sensor events, then one ``SeriesStore.write`` -- then deletes
   the staged rows.  The busier the receivers, the more samples per series each write carries.

A crash between a feed's write and the deletion of its staged rows replays them at the next
start: series keep the last write of a (series, time), so samples come out the same, and sensor
events carry their staging id under a unique index, so none is stored twice.  ``settle()`` waits
until everything acknowledged so far is in the store (reads call it: read-your-writes).
``stop()`` answers every queued request and feeds every staged one before it returns, so a clean
shutdown leaves the staging file empty.  When the feed falls ``backlog_max`` samples behind,
staging waits for it: requests slow down instead of memory growing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from telmon.push.errors import ShuttingDown
from telmon.push.samples import SampleBatch
from telmon.push.schema import STAGE_SCHEMA

log = logging.getLogger("telmon.push.writer")

_STOP = object()


@dataclass(slots=True)
class Job:
    """What one request writes: samples, and energy-sensor event rows (writer.EVENT_COLUMNS
    without the trailing stage id)."""

    batch: SampleBatch
    events: Sequence[tuple[Any, ...]] = ()
    done: Callable[[BaseException | None], None] | None = None

    @property
    def size(self) -> int:
        return self.batch.size + len(self.events)


@dataclass(slots=True)
class Staged:
    """An acknowledged request waiting for the feed."""

    stage_id: int
    batch: SampleBatch
    events: Sequence[tuple[Any, ...]]


@dataclass(slots=True)
class WriterStats:
    jobs: int = 0  # requests acknowledged
    stage_commits: int = 0
    largest_group: int = 0  # requests in the largest staging commit
    samples: int = 0  # samples fed to the rollups
    events: int = 0  # sensor events stored
    feeds: int = 0  # SeriesStore writes
    largest_feed: int = 0  # samples in the largest one
    last_feed_seconds: float = 0.0
    backlog: int = 0  # samples acknowledged, not yet fed
    replayed: int = 0  # staged requests fed again after a restart
    failures: int = 0
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


EVENT_COLUMNS = ("received_at", "device_id", "device_fw", "device_evt", "reported_at", "coil_reversed",
                 "power_active_w", "power_reactive_var", "power_apparent_va", "line_current_a", "line_voltage_v",
                 "line_phase_rad", "line_frequency_hz", "peaks", "fft_re", "fft_img", "wifi_strength_dbm", "dummy",
                 "stage_id")
_INSERT_EVENT = (f"INSERT OR IGNORE INTO push_sensor_events({', '.join(EVENT_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))})")


def encode(job: Job, uid: int) -> bytes:
    """A request as one staging blob: JSON header (names, hosts, events, the request's random id),
    then the arrays."""
    b = job.batch
    head = orjson.dumps({"n": b.names, "h": b.hosts, "e": list(job.events), "u": uid})
    return (len(head).to_bytes(4, "little") + head + b.name_index.astype(np.int64).tobytes()
            + b.ts.astype(np.float64).tobytes() + b.values.astype(np.float64).tobytes())


def decode(stage_id: int, blob: bytes) -> Staged:
    n_head = int.from_bytes(blob[:4], "little")
    head = orjson.loads(blob[4:4 + n_head])
    arrays = memoryview(blob)[4 + n_head:]
    n = len(arrays) // 24
    idx = np.frombuffer(arrays[:8 * n], np.int64)
    ts = np.frombuffer(arrays[8 * n:16 * n], np.float64)
    values = np.frombuffer(arrays[16 * n:], np.float64)
    return Staged(stage_id, SampleBatch(head["n"], idx, ts, values, head["h"]), [(*e, head["u"]) for e in head["e"]])


def stage_path_for(store: Any) -> str:
    """The staging file beside an SQLite store (in memory for an in-memory store)."""
    path = getattr(store, "path", ":memory:")
    return ":memory:" if path == ":memory:" else f"{path}.push-stage"


class PushWriter:
    """Two-stage writer over ``series`` (a SeriesStore) and its SQLite store."""

    def __init__(self, series: Any, *, group_max: int = 200_000, feed_max: int = 2_000_000,
                 backlog_max: int = 4_000_000, stage_path: str | None = None, now: Callable[[], float] = time.time,
                 on_events: Callable[[int], None] | None = None) -> None:
        self.series = series
        self.store = series.store
        self.group_max = max(1, int(group_max))
        self.feed_max = max(1, int(feed_max))
        self.backlog_max = max(1, int(backlog_max))
        self.now = now
        self.on_events = on_events
        self.stats = WriterStats()
        self.stage_path = stage_path or stage_path_for(self.store)
        if self.stage_path != ":memory:":
            Path(self.stage_path).parent.mkdir(parents=True, exist_ok=True)
        self._stage = sqlite3.connect(self.stage_path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._stage.execute("PRAGMA journal_mode=WAL")
        self._stage.execute("PRAGMA synchronous=NORMAL")
        self._stage.execute(STAGE_SCHEMA)
        self._stage_lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._staged: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._staged_id = 0  # newest acknowledged stage id
        self._fed_id = 0  # every stage id up to here is in the store
        self._stage_thread: threading.Thread | None = None
        self._feed_thread: threading.Thread | None = None
        self._accepting = False
        self._stopping = False
        self._lock = threading.Lock()
        self._known_hosts: set[str] = set()

    # --- life ---------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._stage_thread is not None:
                return
            self._replay()
            self._accepting, self._stopping = True, False
            self._stage_thread = threading.Thread(target=self._run_stage, name="telmon-push-stage", daemon=True)
            self._feed_thread = threading.Thread(target=self._run_feed, name="telmon-push-feed", daemon=True)
            self._stage_thread.start()
            self._feed_thread.start()

    def _replay(self) -> None:
        """Requests acknowledged before a crash but never fed: feed them first."""
        rows = self._stage.execute("SELECT id, payload FROM push_stage ORDER BY id").fetchall()
        for stage_id, blob in rows:
            item = decode(stage_id, blob)
            self._staged.put(item)
            self.stats.backlog += item.batch.size
            self._staged_id = max(self._staged_id, stage_id)
        if rows:
            self.stats.replayed += len(rows)
            log.warning("push writer: feeding %d request(s) acknowledged before the last stop", len(rows))

    def stop(self, timeout: float | None = 120.0) -> None:
        """Answer every queued request, feed every staged one, then end both threads."""
        with self._lock:
            self._accepting = False
            stage, feed = self._stage_thread, self._feed_thread
            self._stage_thread = self._feed_thread = None
        if stage is not None:
            self._jobs.put(_STOP)
            stage.join(timeout)
        self._answer_leftovers()
        if feed is not None:
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            self._staged.put(_STOP)
            feed.join(timeout)
        with self._stage_lock, contextlib.suppress(sqlite3.Error):
            self._stage.close()

    @property
    def depth(self) -> int:
        return self._jobs.qsize()

    # --- submitting -----------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        with self._lock:
            if not self._accepting:
                raise ShuttingDown()
            self._jobs.put(job)

    async def write(self, job: Job) -> None:
        """Queue the job; return once it is durably staged (raises the staging error)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def done(exc: BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_settle, fut, exc)

        job.done = done
        self.submit(job)
        await fut

    def write_sync(self, job: Job, timeout: float | None = None) -> None:
        """Same as ``write`` for threads (the in-serve agent, tests)."""
        finished = threading.Event()
        error: list[BaseException | None] = [None]

        def done(exc: BaseException | None) -> None:
            error[0] = exc
            finished.set()

        job.done = done
        self.submit(job)
        if not finished.wait(timeout):
            raise TimeoutError("the push writer did not stage the request in time")
        if error[0] is not None:
            raise error[0]

    def settle(self, timeout: float | None = 60.0) -> bool:
        """Wait until every request acknowledged so far is in the store; False on timeout."""
        with self._cond:
            target = self._staged_id
            return self._cond.wait_for(lambda: self._fed_id >= target or self._stopping and not self._feed_alive(),
                                       timeout)

    def _feed_alive(self) -> bool:
        return self._feed_thread is not None and self._feed_thread.is_alive()

    # --- stage 1: acknowledge -------------------------------------------------------------
    def _run_stage(self) -> None:
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is _STOP:
                break
            group, n = [first], first.size
            while n < self.group_max:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                group.append(nxt)
                n += nxt.size
            self._stage_group(group)

    def _answer_leftovers(self) -> None:
        """Jobs that raced with stop() (queued after the STOP marker) are still staged."""
        group = []
        while True:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                group.append(item)
        if group:
            self._stage_group(group)

    def _stage_group(self, group: list[Job]) -> None:
        with self._cond:  # back-pressure: let the feed catch up before taking more
            self._cond.wait_for(lambda: self.stats.backlog < self.backlog_max or self._stopping, timeout=60)
        error: BaseException | None = None
        items: list[Staged] = []
        try:
            # events are keyed by a random request id, not the staging row id: the staging file
            # may be deleted and its ids start again, a replayed event must still be recognised
            uids = [secrets.randbits(62) for _ in group]
            blobs = [(encode(job, uid),) for job, uid in zip(group, uids)]
            with self._stage_lock:
                self._stage.execute("BEGIN IMMEDIATE")
                try:
                    self._stage.executemany("INSERT INTO push_stage(payload) VALUES (?)", blobs)
                    last = self._stage.execute("SELECT last_insert_rowid()").fetchone()[0]
                    self._stage.execute("COMMIT")
                except BaseException:
                    self._stage.execute("ROLLBACK")
                    raise
            # one writer on this file: the rows of one executemany get consecutive ids
            first_id = last - len(group) + 1
            items = [Staged(first_id + i, job.batch, [(*row, uid) for row in job.events])
                     for i, (job, uid) in enumerate(zip(group, uids))]
        except BaseException as exc:  # every waiting request must hear about it
            error = exc
            self.stats.failures += 1
            self.stats.last_error = f"staging: {type(exc).__name__}: {exc}"
            log.error("push writer: staging %d request(s) failed: %s", len(group), exc)
        else:
            st = self.stats
            st.jobs += len(group)
            st.stage_commits += 1
            st.largest_group = max(st.largest_group, len(group))
            with self._cond:
                st.backlog += sum(i.batch.size for i in items)
                self._staged_id = items[-1].stage_id
            for item in items:
                self._staged.put(item)
        for job in group:
            if job.done is not None:
                try:
                    job.done(error)
                except Exception:  # a waiter that went away must not stop the writer
                    log.exception("push writer: answering a request failed")

    # --- stage 2: feed the store ----------------------------------------------------------
    def _run_feed(self) -> None:
        stopping = False
        while not stopping:
            first = self._staged.get()
            if first is _STOP:
                break
            items, n = [first], first.batch.size + 1
            while n < self.feed_max:
                try:
                    nxt = self._staged.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                items.append(nxt)
                n += nxt.batch.size + 1
            self._feed_until_done(items)

    def _feed_until_done(self, items: list[Staged]) -> None:
        """Acknowledged samples must reach the store: retry a failed feed (a locked or full
        disk clears up) until it works or the writer stops (they stay staged for next time)."""
        delay = 0.5
        while True:
            try:
                self._feed(items)
                return
            except Exception as exc:
                self.stats.failures += 1
                self.stats.last_error = f"feed: {type(exc).__name__}: {exc}"
                log.error("push writer: feeding %d staged request(s) failed, retrying: %s", len(items), exc)
                with self._cond:
                    if self._stopping:
                        return
                    self._cond.wait(delay)
                delay = min(delay * 2, 30.0)

    def _feed(self, items: list[Staged]) -> None:
        t0 = time.monotonic()
        n_events = self._write_rows(items)
        n_samples = self._write_samples(items)
        last = items[-1].stage_id
        with self._stage_lock:
            self._stage.execute("DELETE FROM push_stage WHERE id <= ?", (last,))
        st = self.stats
        st.feeds += 1
        st.samples += n_samples
        st.events += n_events
        st.largest_feed = max(st.largest_feed, n_samples)
        st.last_feed_seconds = round(time.monotonic() - t0, 4)
        with self._cond:
            st.backlog -= sum(i.batch.size for i in items)
            self._fed_id = max(self._fed_id, last)
            self._cond.notify_all()
        if n_events and self.on_events is not None:
            try:
                self.on_events(n_events)
            except Exception:
                log.exception("push writer: on_events callback failed")

    def _write_rows(self, items: list[Staged]) -> int:
        """New hosts and sensor events, in one transaction before the samples."""
        new_hosts = {h for it in items for h in it.batch.hosts} - self._known_hosts
        events = [row for it in items for row in it.events]
        if not new_hosts and not events:
            return 0
        now = self.now()
        with self.store.transaction() as conn:
            if new_hosts:
                conn.executemany("INSERT OR IGNORE INTO push_hosts(name, first_seen) VALUES (?, ?)",
                                 [(h, now) for h in sorted(new_hosts)])
            if events:
                conn.executemany(_INSERT_EVENT, events)
        self._known_hosts |= new_hosts
        return len(events)

    def _write_samples(self, items: list[Staged]) -> int:
        batches = [it.batch for it in items if it.batch.size]
        if not batches:
            return 0
        if len(batches) == 1:
            b = batches[0]
            names, gidx, ts, values = b.names, b.name_index, b.ts, b.values
        else:
            index_of: dict[str, int] = {}
            parts = []
            for b in batches:
                local = np.fromiter((index_of.setdefault(n, len(index_of)) for n in b.names), np.int64, len(b.names))
                parts.append(local[b.name_index])
            names = list(index_of)
            gidx = np.concatenate(parts)
            ts = np.concatenate([b.ts for b in batches])
            values = np.concatenate([b.values for b in batches])
        # stable: a series' samples keep their arrival order (the last of a duplicate time wins)
        order = np.argsort(gidx, kind="stable")
        counts = np.bincount(gidx, minlength=len(names))
        ends = np.cumsum(counts)
        ts, values = ts[order], values[order]
        samples = [(name, ts[e - c:e], values[e - c:e]) for name, c, e in zip(names, counts.tolist(), ends.tolist())
                   if c]
        self.series.write(samples, source="push", now=self.now())
        return len(ts)

    def known_hosts(self) -> set[str]:
        with self.store._read() as conn:
            found = {r[0] for r in conn.execute("SELECT name FROM push_hosts")}
        self._known_hosts |= found
        return found


def _settle(fut: asyncio.Future[None], exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is None:
        fut.set_result(None)
    else:
        fut.set_exception(exc)
