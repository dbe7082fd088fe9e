"""From a path to committed records: read, hash, recognise by content, parse, commit.

``Ingestor.ingest`` takes many files and commits them in ONE transaction with their
done-marks (group commit: one SQLite commit per file caps throughput, see DESIGN.md).
``IngestWorker`` is the single writer thread that the watchers feed through a queue.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from telmon import formats
from telmon.errors import TelmonError
from telmon.model import IngestResult, ParseOptions, Problem
from telmon.store.base import FileRecord, Store

log = logging.getLogger("telmon.ingest")

MAX_FILE_BYTES = 256 * 1024 * 1024


class Ingestor:
    """Reads and parses files and commits them to a store. Not thread-safe: one per writer."""

    def __init__(
        self,
        store: Store,
        *,
        options: ParseOptions | None = None,
        quarantine_dir: Path | None = None,
        now: Callable[[], float] = time.time,
        max_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        self.store = store
        self.options = options or ParseOptions()
        self.quarantine_dir = quarantine_dir
        self.now = now
        self.max_bytes = max_bytes

    def is_known(self, path: Path, st: os.stat_result) -> bool:
        """Whether this path was already recorded with this size and mtime (scans skip it)."""
        return self.store.file_known(str(path), st.st_size, st.st_mtime_ns)

    def read(self, path: Path, feed: str) -> FileRecord | None:
        """Read and parse one file; None if it vanished or is a directory (nothing to record)."""
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                if not _is_regular(st.st_mode):
                    return None
                if st.st_size > self.max_bytes:
                    return FileRecord(str(path), feed, st.st_size, st.st_mtime_ns, "size:" + str(st.st_size),
                                      st.st_ctime, None, [], [Problem(f"file too large ({st.st_size} bytes; "
                                                                      f"the limit is {self.max_bytes})")])
                data = fh.read()
        except FileNotFoundError:
            log.debug("%s vanished before it could be read", path)
            return None
        except OSError as exc:
            log.warning("cannot read %s: %s", path, exc)
            return None
        return self.parse(path, feed, data, st)

    def parse(self, path: Path, feed: str, data: bytes, st: os.stat_result) -> FileRecord:
        sha = hashlib.sha256(data).hexdigest()
        # ctime, not mtime: rsync -t keeps the source's mtime, but the inode changes when the
        # file lands here, so ctime is when it arrived.
        rec = FileRecord(str(path), feed, len(data), st.st_mtime_ns, sha, st.st_ctime, None)
        if not data.strip():
            rec.problems.append(Problem("empty file" if not data else "file holds only white space"))
            return rec
        fmt = formats.detect(data[: formats.SNIFF_BYTES])
        if fmt is None:
            names = ", ".join(f.NAME for f in formats.all_formats())
            rec.problems.append(Problem(f"no format recognises this file (tried {names})", offset=0))
            return rec
        rec.format = fmt.NAME
        try:
            result = fmt.parse(data, name=path.name, options=self.options)
        except Exception as exc:  # a parser bug must not stop the watcher; record it and go on
            log.exception("%s parser failed on %s", fmt.NAME, path)
            rec.problems.append(Problem(f"{fmt.NAME} parser failed: {type(exc).__name__}: {exc}"))
            return rec
        rec.units = result.units
        rec.problems = result.problems
        if not rec.units and not rec.problems:
            rec.problems.append(Problem(f"{fmt.NAME} file holds no records"))
        return rec

    def ingest(self, items: Sequence[tuple[Path, str]]) -> list[IngestResult]:
        """Read, parse and commit ``items`` ((path, feed) pairs) in one transaction."""
        records = []
        for path, feed in items:
            rec = self.read(Path(path), feed)
            if rec is not None:
                records.append(rec)
        if not records:
            return []
        results = self.store.record_files(records, now=self.now())
        for res in results:
            if res.status == "rejected":
                log.warning("rejected %s: %s", res.path, "; ".join(res.reasons))
                self._quarantine(res)
            elif res.status == "partial":
                log.warning("accepted part of %s; rejected: %s", res.path, "; ".join(res.reasons[:3]))
        return results

    def _quarantine(self, res: IngestResult) -> None:
        if self.quarantine_dir is None or res.file_id is None:
            return
        src = Path(res.path)
        dest_dir = self.quarantine_dir / time.strftime("%Y%m%d", time.gmtime(self.now()))
        dest = dest_dir / f"{src.name}.{res.file_id}"
        try:
            dest_dir.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), dest)
        except OSError as exc:
            log.warning("cannot move rejected %s to quarantine: %s", src, exc)
            return
        self.store.set_quarantined(res.file_id, str(dest))


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


@dataclass(slots=True)
class WorkerStats:
    submitted: int = 0
    committed_files: int = 0
    arrivals: int = 0
    rejected: int = 0
    duplicates: int = 0
    batches: int = 0
    last_commit_at: float | None = None
    last_error: str | None = None


class IngestWorker:
    """The single writer: takes (path, feed) from a queue, commits them in groups."""

    def __init__(
        self,
        ingestor: Ingestor,
        *,
        batch_max: int = 500,
        linger: float = 0.02,
        on_commit: Callable[[list[IngestResult]], None] | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.batch_max = batch_max
        self.linger = linger
        self._last_commit_end: float | None = None
        self.on_commit = on_commit
        self.stats = WorkerStats()
        self._queue: queue.Queue[tuple[Path, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def submit(self, path: Path, feed: str) -> None:
        self.stats.submitted += 1
        self._idle.clear()
        self._queue.put((path, feed))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="telmon-ingest", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until everything submitted so far is committed."""
        return self._idle.wait(timeout)

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is None:
                break
            group = [item]
            # Group commit: while files keep coming, linger a moment so one transaction takes
            # many of them (a commit per file caps throughput); when idle, commit at once.
            busy = self._last_commit_end is not None and time.monotonic() - self._last_commit_end < 0.05
            deadline = time.monotonic() + (self.linger if busy else 0.0)
            while len(group) < self.batch_max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        nxt = self._queue.get(timeout=remaining)
                    except queue.Empty:
                        break
                if nxt is None:
                    stopping = True
                    break
                group.append(nxt)
            self._commit(group)
            self._last_commit_end = time.monotonic()
            if self._queue.empty():
                self._idle.set()
        self._idle.set()

    def _commit(self, group: list[tuple[Path, str]]) -> None:
        # The same path may be queued twice (inotify event + scan): read it once per group.
        unique = list(dict.fromkeys(group))
        delay = 0.5
        while True:
            try:
                results = self.ingestor.ingest(unique)
                break
            except TelmonError as exc:
                # The store is unreachable or locked: nothing was committed, so retry the group.
                self.stats.last_error = str(exc)
                log.error("ingest of %d files failed, retrying in %.1fs: %s", len(unique), delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
            except Exception as exc:  # noqa: BLE001 - the writer thread must survive anything
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("ingest of %d files failed; they stay on disk and the next scan retries them", len(unique))
                return
        st = self.stats
        st.batches += 1
        st.last_commit_at = time.time()
        for r in results:
            if r.status == "duplicate":
                st.duplicates += 1
            else:
                st.committed_files += 1
                st.arrivals += r.arrivals
                if r.status == "rejected":
                    st.rejected += 1
        if self.on_commit is not None:
            try:
                self.on_commit(results)
            except Exception:  # noqa: BLE001
                log.exception("on_commit callback failed")


def ingest_tree(
    ingestor: Ingestor,
    roots: Sequence[str | Path],
    feed: str,
    *,
    ignore: Sequence[str] = (),
    batch_max: int = 500,
    progress: Callable[[int], None] | None = None,
) -> list[IngestResult]:
    """One catch-up pass: record every file under ``roots`` not yet recorded as it is now."""
    from fnmatch import fnmatch

    results: list[IngestResult] = []
    group: list[tuple[Path, str]] = []

    def flush() -> None:
        results.extend(ingestor.ingest(group))
        if progress is not None:
            progress(len(group))
        group.clear()

    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not any(fnmatch(d, p) for p in ignore))
            for name in sorted(filenames):
                if any(fnmatch(name, p) for p in ignore):
                    continue
                path = Path(dirpath) / name
                try:
                    st = path.stat()
                except OSError:
                    continue
                if ingestor.is_known(path, st):
                    continue
                group.append((path, feed))
                if len(group) >= batch_max:
                    flush()
    if group:
        flush()
    return results
