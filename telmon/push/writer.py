"""The push writer: one thread that commits many requests' samples in one SeriesStore write.

One SQLite commit per request capped ingest at ~1,500-2,500 requests/s (shared/DESIGN.md), and
a SeriesStore write has a fixed cost per series touched, so requests are queued and the
thread takes everything queued when it becomes free (up to ``group_max`` samples): the busier
the receiver, the larger and cheaper each write.  A request is answered only after the write
holding its samples committed (acknowledge-on-commit): an answered sample is in the store.
``stop()`` drains the queue before it returns, so a clean shutdown loses nothing either.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from telmon.push.errors import ShuttingDown
from telmon.push.samples import SampleBatch

log = logging.getLogger("telmon.push.writer")

_STOP = object()


@dataclass(slots=True)
class Job:
    """What one request writes: samples, and energy-sensor events (rows of push_sensor_events)."""

    batch: SampleBatch
    events: Sequence[tuple[Any, ...]] = ()
    done: Callable[[BaseException | None], None] | None = None
    queued_at: float = 0.0

    @property
    def size(self) -> int:
        return self.batch.size + len(self.events)


@dataclass(slots=True)
class WriterStats:
    jobs: int = 0
    groups: int = 0
    samples: int = 0
    events: int = 0
    failed_groups: int = 0
    largest_group: int = 0  # requests in the largest group committed so far
    last_group_seconds: float = 0.0
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


EVENT_COLUMNS = ("received_at", "device_id", "device_fw", "device_evt", "reported_at", "coil_reversed",
                 "power_active_w", "power_reactive_var", "power_apparent_va", "line_current_a", "line_voltage_v",
                 "line_phase_rad", "line_frequency_hz", "peaks", "fft_re", "fft_img", "wifi_strength_dbm", "dummy")
_INSERT_EVENT = (f"INSERT INTO push_sensor_events({', '.join(EVENT_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))})")


class PushWriter:
    """Group-committing writer over ``series`` (a SeriesStore) and its SQLite store."""

    def __init__(self, series: Any, *, group_max: int = 200_000, now: Callable[[], float] = time.time,
                 on_events: Callable[[int], None] | None = None) -> None:
        self.series = series
        self.store = series.store
        self.group_max = max(1, int(group_max))
        self.now = now
        self.on_events = on_events
        self.stats = WriterStats()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._accepting = True
        self._known_hosts: set[str] = set()
        self._lock = threading.Lock()

    # --- life ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._accepting = True
            self._thread = threading.Thread(target=self._run, name="telmon-push-writer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = 60.0) -> None:
        """Refuse new jobs, commit every queued one, then end the thread."""
        with self._lock:
            self._accepting = False
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)
        # jobs that raced with stop() (submitted after the STOP marker) are still answered
        self._drain_remaining()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    # --- submitting -----------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        with self._lock:
            if not self._accepting or self._thread is None:
                raise ShuttingDown()
            job.queued_at = time.monotonic()
            self._queue.put(job)

    async def write(self, job: Job) -> None:
        """Queue the job and wait until it is committed (raises the write's error)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def done(exc: BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(_settle, fut, exc)
            except RuntimeError:  # the loop closed meanwhile: nobody waits any more
                pass

        job.done = done
        self.submit(job)
        await fut

    def write_sync(self, job: Job, timeout: float | None = None) -> None:
        """Same as ``write`` for threads (the in-serve agent, the CLI, tests)."""
        finished = threading.Event()
        error: list[BaseException | None] = [None]

        def done(exc: BaseException | None) -> None:
            error[0] = exc
            finished.set()

        job.done = done
        self.submit(job)
        if not finished.wait(timeout):
            raise TimeoutError("the push writer did not commit in time")
        if error[0] is not None:
            raise error[0]

    # --- the thread -------------------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            group, n = [first], first.size
            while n < self.group_max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                group.append(nxt)
                n += nxt.size
            self._commit(group)

    def _drain_remaining(self) -> None:
        group = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                group.append(item)
        if group:
            self._commit(group)

    def _commit(self, group: list[Job]) -> None:
        t0 = time.monotonic()
        error: BaseException | None = None
        n_events = 0
        try:
            n_events = self._write_rows(group)
            self._write_samples(group)
        except BaseException as exc:  # every waiting request must hear about it
            error = exc
            self.stats.failed_groups += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            log.error("push write of %d request(s) failed: %s", len(group), exc)
        else:
            st = self.stats
            st.groups += 1
            st.jobs += len(group)
            st.samples += sum(j.batch.size for j in group)
            st.events += n_events
            st.largest_group = max(st.largest_group, len(group))
            st.last_group_seconds = round(time.monotonic() - t0, 4)
        for job in group:
            if job.done is not None:
                try:
                    job.done(error)
                except Exception:  # a waiter that went away must not stop the writer
                    log.exception("push writer: answering a request failed")
        if error is None and n_events and self.on_events is not None:
            try:
                self.on_events(n_events)
            except Exception:
                log.exception("push writer: on_events callback failed")

    def _write_rows(self, group: list[Job]) -> int:
        """New hosts and sensor events, in one transaction before the samples."""
        new_hosts = {h for job in group for h in job.batch.hosts} - self._known_hosts
        events = [row for job in group for row in job.events]
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

    def _write_samples(self, group: list[Job]) -> None:
        batches = [j.batch for j in group if j.batch.size]
        if not batches:
            return
        if len(batches) == 1:
            b = batches[0]
            names, gidx, ts, values = b.names, b.name_index, b.ts, b.values
        else:
            names, index_of, parts = [], {}, []
            for b in batches:
                local = np.fromiter((index_of.setdefault(n, len(index_of)) for n in b.names), np.int64, len(b.names))
                parts.append(local[b.name_index])
            names = list(index_of)
            gidx = np.concatenate(parts)
            ts = np.concatenate([b.ts for b in batches])
            values = np.concatenate([b.values for b in batches])
        order = np.argsort(gidx, kind="stable")
        counts = np.bincount(gidx, minlength=len(names))
        ends = np.cumsum(counts)
        ts, values = ts[order], values[order]
        samples = [(name, ts[e - c:e], values[e - c:e]) for name, c, e in zip(names, counts.tolist(), ends.tolist())
                   if c]
        self.series.write(samples, source="push", now=self.now())

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
