"""The tailer: follows MetPX logs and commits their statistics exactly once.

One look (:meth:`Tailer.poll`) has two steps:

1. **Reconcile** (one transaction): match the files on disk to the followed ones.  A known
   inode that grew is read on; a rotated file keeps its inode (rename) and is finished before
   its successor (files of a stream are read in order); a followed file whose inode vanished
   is found again by the fingerprint of its first bytes (compressed to ``.gz``, moved); a
   followed file that shrank or whose head changed is, in this order, a copytruncate (a copy
   with its fingerprint exists: finish reading the copy, start the emptied file afresh), a
   rewritten file (the last bytes read still occur in it: revert its batches and read it again
   from the start), or a truncated or replaced one (keep what was counted, read the new content
   from the start).  Each of these is noted (``tail_notes``) and logged.
2. **Read** up to ``chunk_bytes`` at a time and commit: per file, the samples of the whole
   lines read go into the series (telmon.tail.seriesio) or the push outbox, in the same
   transaction as the file's new checkpoint.  A partial last line waits for its newline.

Killed at any point, a restart re-reads exactly the bytes after the last committed checkpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from telmon.errors import ConfigError, TelmonError
from telmon.formats import metpx
from telmon.tail import files as lf
from telmon.tail import seriesio, state
from telmon.tail.files import Candidate
from telmon.tail.names import safe
from telmon.tail.schema import ensure_schema
from telmon.tail.settings import TailSettings
from telmon.tail.state import ACTIVE, DONE, GONE, REPLACED, FileRow
from telmon.tail.stats import Carry, ChunkStats, chunk_stats

log = logging.getLogger("telmon.tail")

MAX_LINE = 1 << 20  # a "line" this long without a newline is cut and counted as unparseable
_EXCERPT = 80


@dataclass(slots=True)
class TailStatus:
    """Counters of this tailer since it started (what `telmon tail` and /status report)."""

    polls: int = 0
    commits: int = 0
    lines: int = 0
    bytes: int = 0
    samples: int = 0
    stale: int = 0  # reads dropped because the checkpoint moved under them (rewind, restore)
    last_poll_at: float | None = None
    last_commit_at: float | None = None
    last_error: str | None = None
    pending_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


@dataclass(slots=True)
class PollResult:
    lines: int = 0
    bytes: int = 0
    commits: int = 0
    files: int = 0
    caught_up: bool = True


@dataclass(slots=True)
class _Item:
    """One read of one file, parsed, waiting for its commit."""

    row: FileRow  # the checkpoint after this read
    before: FileRow  # the checkpoint it was read from
    stats: ChunkStats
    rejected: list[tuple[str, int, int]]
    nbytes: int
    nlines: int


@dataclass(slots=True)
class _Work:
    row: FileRow
    cand: Candidate
    final_ok: bool  # may its last line without a newline be taken (file will not grow)?
    eof: bool = False


class Tailer:
    """Follows the logs of ``settings.dirs`` for one machine.  Thread-safe to stop; one
    poll at a time."""

    def __init__(self, store: Any, series: Any, settings: TailSettings, *, now: Callable[[], float] = time.time,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
        self.store = store
        self.series = series
        self.settings = settings
        self.now = now
        self.on_progress = on_progress
        self.machine = safe(settings.machine_name)
        try:
            self.zone = metpx.LogZone(settings.zone)
        except ValueError as exc:
            raise ConfigError(str(exc), key="tail_zone") from None
        self.push = bool(settings.push_url)
        self.local = settings.keep_local or not self.push
        ensure_schema(store)
        self.status = TailStatus()
        self._readers: dict[int, lf.Reader] = {}
        self._heads: dict[tuple[int, int, int, int], bytes] = {}
        self._ignore: set[tuple[int, int, int, int]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._poll_lock = threading.Lock()
        self._look_again = False

    # --- life -----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=f"tail-{self.machine}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for r in self._readers.values():
            r.close()
        self._readers.clear()

    def run(self) -> None:
        """Poll until stopped; between looks wait ``interval`` once caught up."""
        while not self._stop.is_set():
            caught_up = True
            try:
                caught_up = self.poll().caught_up
            except (TelmonError, OSError) as exc:
                self.status.last_error = str(exc)
                log.error("tail of %s: %s", ", ".join(self.settings.dirs), exc)
            self._stop.wait(self.settings.interval if caught_up else 0.0)

    # --- one look -------------------------------------------------------------------
    def poll(self, *, until_caught_up: bool = True) -> PollResult:
        """Reconcile the files, then read and commit everything pending (several commits
        while catching up).  Returns what was read."""
        with self._poll_lock:
            now = self.now()
            self.status.polls += 1
            self.status.last_poll_at = now
            cands = lf.scan(self.settings.dirs, self.settings.patterns)
            with self.store.transaction() as conn:
                work = self._reconcile(conn, cands, now)
            result = PollResult(files=len(work))
            total = sum(self._pending(w) for w in work)
            self.status.pending_bytes = total
            done = 0
            while work and not self._stop.is_set():
                items, work, budget_hit = self._read(work, now)
                if items:
                    ok = self._commit(items, now)
                    result.commits += 1
                    for it in items:
                        if it.row.id in ok:
                            result.lines += it.nlines
                            result.bytes += it.nbytes
                            done += it.nbytes
                    if len(ok) < len(items):
                        result.caught_up = False  # a checkpoint moved: look again at once
                        break
                    if self.on_progress:
                        self.on_progress(done, max(total, done))
                if not budget_hit or not until_caught_up:
                    result.caught_up = not budget_hit
                    break
            if self._look_again:
                self._look_again = False
                result.caught_up = False  # a file moved under its path: reconcile again at once
            self.status.pending_bytes = max(total - done, 0)
            return result

    def _pending(self, w: _Work) -> int:
        if w.cand.compressed:
            return max(lf.gzip_size(w.cand.path) - w.row.offset, 0)
        return max(w.cand.size - w.row.offset, 0)

    # --- reconcile ------------------------------------------------------------------
    def _head(self, c: Candidate) -> bytes | None:
        head = self._heads.get(c.key)
        if head is None:
            try:
                # through the scanned inode only: the path may name the next file by now
                head = lf.read_head(c.path, c.compressed, ident=(c.dev, c.inode))
            except (OSError, lf.NotReady):
                return None
            self._heads[c.key] = head
        return head

    def _matches(self, row: FileRow, head: bytes) -> bool:
        return len(head) >= row.fp_len and lf.fingerprint(head[:row.fp_len]) == row.fp

    def _reconcile(self, conn: Any, cands: list[Candidate], now: float) -> list[_Work]:
        live = {c.key for c in cands}
        self._heads = {k: v for k, v in self._heads.items() if k in live}
        self._ignore &= live
        active = state.load(conn, self.machine, (ACTIVE,))
        plain = {(c.dev, c.inode): c for c in cands if not c.compressed}
        gz = {(c.dev, c.inode): c for c in cands if c.compressed}
        claimed: set[str] = set()
        work: list[_Work] = []
        missing: list[FileRow] = []
        disturbed: list[tuple[FileRow, Candidate]] = []
        for row in active:
            c = (gz if row.compressed else plain).get((row.dev, row.inode))
            if c is None or (c.name.direction, c.name.client) != row.stream:
                missing.append(row)
                continue
            claimed.add(c.path)
            if row.compressed or (c.size == row.size_seen and c.mtime_ns == row.mtime_ns):
                work.append(self._work(conn, row, c, now))
                continue
            head = self._head(c)
            if head is None:
                continue
            if c.size < row.offset or not self._matches(row, head):
                disturbed.append((row, c))
                continue
            if len(head) > row.fp_len:
                row.fp, row.fp_len = lf.fingerprint(head), len(head)
            work.append(self._work(conn, row, c, now))
        loose = [c for c in cands if c.path not in claimed and c.key not in self._ignore]
        for row, c in disturbed:
            work += self._disturbed(conn, row, c, loose, claimed, now)
        for row in missing:
            w = self._follow(conn, row, loose, claimed, now)
            if w is not None:
                work.append(w)
        for c in loose:
            if c.path in claimed:
                continue
            w = self._untracked(conn, c, now)
            if w is not None:
                claimed.add(c.path)
                work.append(w)
        # older files of a stream first: a rotated file is finished before its successor
        work.sort(key=lambda w: (w.row.direction, w.row.client, w.row.seq))
        return work

    def _work(self, conn: Any, row: FileRow, c: Candidate, now: float) -> _Work:
        """Note size/mtime changes and the file's path, then hand it to the reader."""
        before = (row.generation, row.offset)
        changed = c.size != row.size_seen or c.mtime_ns != row.mtime_ns or c.path != row.path
        if changed:
            if c.size != row.size_seen or c.mtime_ns != row.mtime_ns:
                row.changed_at = now
            if c.path != row.path and not c.compressed:
                state.note(conn, self.machine, "renamed", f"{row.path} -> {c.path}", now=now, row=row)
            row.path, row.size_seen, row.mtime_ns = c.path, c.size, c.mtime_ns
            state.save(conn, row, expect_generation=before[0], expect_offset=before[1], now=now)
        settled = not c.name.current and now - row.changed_at >= self.settings.settle
        return _Work(row, c, final_ok=c.compressed or settled)

    def _disturbed(self, conn: Any, row: FileRow, c: Candidate, loose: list[Candidate], claimed: set[str],
                   now: float) -> list[_Work]:
        """A followed file that shrank or whose first bytes changed (module doc, step 1)."""
        gen, off = row.generation, row.offset
        unread = max(row.size_seen - row.offset, 0)
        for other in loose:
            if other.path in claimed or other.path == c.path or (other.name.direction, other.name.client) != row.stream:
                continue
            head = self._head(other)
            if head is not None and row.fp_len >= lf.FP_MIN and self._matches(row, head):
                # copytruncate: the content went to a copy; finish it there
                claimed.add(other.path)
                state.note(conn, self.machine, "copytruncate",
                           f"{row.path} was copied to {other.path} and emptied; reading on in the copy "
                           f"from byte {row.offset}", now=now, row=row)
                log.info("tail: %s copied to %s and truncated; finishing the copy", row.path, other.path)
                row.path, row.dev, row.inode, row.compressed = other.path, other.dev, other.inode, other.compressed
                row.size_seen, row.mtime_ns, row.changed_at = other.size, other.mtime_ns, now
                state.save(conn, row, expect_generation=gen, expect_offset=off, now=now)
                self._drop_reader(row.id)
                return [_Work(row, other, final_ok=other.compressed), self._new(conn, c, now)]
        at = lf.find_anchor(c.path, False, row.anchor, ident=(c.dev, c.inode)) if row.offset > 0 else -1
        if at >= 0:
            head = self._head(c) or b""
            batches = [b for (b,) in conn.execute(
                "SELECT t.batch_id FROM tail_batches t JOIN batches b ON b.id = t.batch_id WHERE t.file_id = ? "
                "AND b.reverted_at IS NULL ORDER BY t.start_offset DESC", (row.id,))]
            conn.execute("SAVEPOINT tail_rewrite")
            reverted, pruned = state.revert_batches(conn, self.series, batches, machine=self.machine,
                                                    push=self.push, now=now)
            if pruned:
                # too old to take out exactly: keep what was counted and read on after it
                conn.execute("ROLLBACK TO tail_rewrite")
                conn.execute("RELEASE tail_rewrite")
                resume = at + len(row.anchor)
                detail = (f"the first bytes of {row.path} changed; its statistics are older than raw retention "
                          f"and cannot be taken out, so they are kept and reading goes on after the last line "
                          f"read (now at byte {resume})")
                row.offset, row.generation = resume, row.generation + 1
                row.fp, row.fp_len = lf.fingerprint(head), len(head)
                row.size_seen, row.mtime_ns, row.changed_at = c.size, c.mtime_ns, now
            else:
                conn.execute("RELEASE tail_rewrite")
                detail = (f"the first bytes of {row.path} changed but the lines read before are still in it: "
                          f"re-reading it from the start ({reverted} batch(es) reverted, nothing counted twice)")
                self._reset(row, head, c, now)
            state.note(conn, self.machine, "head rewritten", detail, now=now, row=row)
            log.warning("tail: %s", detail)
            state.save(conn, row, expect_generation=gen, expect_offset=off, now=now)
            self._drop_reader(row.id)
            return [_Work(row, c, final_ok=False)]
        lost = f"; up to {unread} byte(s) written after the last read were lost" if unread else ""
        what = "truncated" if c.size < row.offset else "replaced"
        state.note(conn, self.machine, what,
                   f"{row.path} was {what} at byte {row.offset}: {row.lines} line(s) read before are kept{lost}; "
                   "reading the new content from the start", now=now, row=row)
        log.warning("tail: %s %s at byte %d%s", row.path, what, row.offset, lost)
        row.state = REPLACED
        state.save(conn, row, expect_generation=gen, expect_offset=off, now=now)
        self._drop_reader(row.id)
        return [self._new(conn, c, now)]

    def _reset(self, row: FileRow, head: bytes, c: Candidate, now: float) -> None:
        row.offset = row.lines = 0
        row.carry = Carry()
        row.anchor = b""
        row.fp, row.fp_len = lf.fingerprint(head), len(head)
        row.generation += 1
        row.first_at = row.last_at = None
        row.counters = {k: 0 for k in row.counters}
        row.batch_id = row.batch_hour = None
        row.size_seen, row.mtime_ns, row.changed_at, row.path = c.size, c.mtime_ns, now, c.path

    def _follow(self, conn: Any, row: FileRow, loose: list[Candidate], claimed: set[str], now: float) -> _Work | None:
        """A followed file whose inode is gone: find its content elsewhere, or give it up."""
        gen, off = row.generation, row.offset
        for c in loose:
            if c.path in claimed or (c.name.direction, c.name.client) != row.stream or row.fp_len < lf.FP_MIN:
                continue
            head = self._head(c)
            if head is not None and self._matches(row, head):
                claimed.add(c.path)
                state.note(conn, self.machine, "moved", f"{row.path} went to {c.path}; reading on from byte "
                           f"{row.offset}", now=now, row=row)
                row.path, row.dev, row.inode, row.compressed = c.path, c.dev, c.inode, c.compressed
                row.size_seen, row.mtime_ns = c.size, c.mtime_ns
                state.save(conn, row, expect_generation=gen, expect_offset=off, now=now)
                self._drop_reader(row.id)
                return _Work(row, c, final_ok=c.compressed)
        unread = max(row.size_seen - row.offset, 0)
        detail = f"{row.path} disappeared after {row.lines} line(s)" + (
            f"; {unread} byte(s) were never read" if unread else "")
        state.note(conn, self.machine, "gone", detail, now=now, row=row)
        if unread:
            log.warning("tail: %s", detail)
        row.state = GONE
        state.save(conn, row, expect_generation=gen, expect_offset=off, now=now)
        self._drop_reader(row.id)
        return None

    def _untracked(self, conn: Any, c: Candidate, now: float) -> _Work | None:
        """A file no active row follows: a finished file, a copy of one, or a new file."""
        same = state.load_stream(conn, self.machine, c.name.direction, c.name.client)
        for row in same:
            if row.state != ACTIVE and not row.compressed and not c.compressed and (row.dev, row.inode) == (c.dev, c.inode):
                if row.state == DONE and c.size > row.offset and c.mtime_ns != row.mtime_ns:
                    gen, off = row.generation, row.offset
                    row.state = ACTIVE
                    state.note(conn, self.machine, "grew again", f"{c.path} grew after it was closed", now=now, row=row)
                    state.save(conn, row, expect_generation=gen, expect_offset=off, now=now)
                    return self._work(conn, row, c, now)
                self._ignore.add(c.key)
                return None
        head = self._head(c)
        if head is None:
            return None  # unreadable, or a .gz still being written: look again next time
        for row in same:
            if row.fp_len < lf.FP_MIN or not self._matches(row, head):
                continue
            if row.state == ACTIVE:
                return None  # a copy of a file still followed (copytruncate about to truncate, or cp)
            if row.state == GONE and row.offset > 0:
                gen, off = row.generation, row.offset
                row.state = ACTIVE
                row.path, row.dev, row.inode, row.compressed = c.path, c.dev, c.inode, c.compressed
                row.size_seen, row.mtime_ns = c.size, c.mtime_ns
                state.note(conn, self.machine, "found again", f"reading on in {c.path} from byte {row.offset}",
                           now=now, row=row)
                state.save(conn, row, expect_generation=gen, expect_offset=off, now=now)
                return _Work(row, c, final_ok=c.compressed)
            self._ignore.add(c.key)  # a copy (e.g. compressed) of a file already read
            return None
        return self._new(conn, c, now)

    def _new(self, conn: Any, c: Candidate, now: float) -> _Work:
        head = self._head(c) or b""
        row = state.create(conn, machine=self.machine, direction=c.name.direction, client=c.name.client, path=c.path,
                           dev=c.dev, inode=c.inode, compressed=c.compressed, fp=lf.fingerprint(head),
                           fp_len=len(head), size=c.size, mtime_ns=c.mtime_ns, now=now)
        return self._work(conn, row, c, now)

    def _drop_reader(self, file_id: int) -> None:
        r = self._readers.pop(file_id, None)
        if r is not None:
            r.close()

    # --- read -----------------------------------------------------------------------
    def _read(self, work: list[_Work], now: float) -> tuple[list[_Item], list[_Work], bool]:
        """Read whole lines from the files in order until the budget is spent, parse them all
        in one pass, and turn each file's lines into an item.  Returns the items, the work
        left, and whether the budget (not the data) ran out."""
        budget = max(self.settings.chunk_bytes, 1 << 16)
        fetched: list[tuple[_Work, bytes, bool]] = []
        closing: list[_Item] = []
        left: list[_Work] = []
        spent = 0
        for i, w in enumerate(work):
            if spent >= budget:
                left = work[i:]
                break
            got = self._fetch(w, budget - spent)
            if got is not None:
                data, final = got
                if data:
                    fetched.append((w, data, final))
                    spent += len(data)
                elif final and w.row.state == ACTIVE:
                    closing.append(self._close(w, now))
            if not w.eof:
                left.append(w)  # more of this file after the commit
                left += work[i + 1:]
                break
        chunks = [d if d.endswith(b"\n") else d + b"\n" for _, d, _ in fetched]
        parsed = metpx.parse_many(chunks, self.zone, [w.row.carry.level for w, _, _ in fetched],
                                  sources=False) if chunks else []
        items = [self._item(w, data, final, p) for (w, data, final), p in zip(fetched, parsed)]
        return items + closing, left, bool(left)

    def _fetch(self, w: _Work, budget: int) -> tuple[bytes, bool] | None:
        """Up to ``budget`` bytes of whole lines from the checkpoint (and whether they end the
        file for good); None if the file cannot be read now."""
        row = w.row
        reader = self._readers.get(row.id)
        ident = (w.cand.dev, w.cand.inode)
        if reader is None or reader.path != w.cand.path or reader.ident != ident:
            if reader is not None:
                reader.close()
            reader = self._readers[row.id] = lf.Reader(w.cand.path, w.cand.compressed, ident)
        try:
            # the reader checks that the path still names the inode the reconcile matched: a
            # rename rotation since then would otherwise have this row read the new file's
            # bytes at its own offset (lines of the new file counted twice, as many of the
            # old one never)
            data = reader.read(row.offset, budget)
        except lf.Moved as exc:
            log.debug("tail: %s", exc)
            self._look_again = True  # the next reconcile finds the file under its new name
            w.eof = True
            return None
        except (OSError, lf.NotReady) as exc:
            log.debug("tail: %s not readable now: %s", w.cand.path, exc)
            w.eof = True
            return None
        w.eof = len(data) < budget
        final = w.eof and w.final_ok
        if not final:
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) >= MAX_LINE:
                cut = len(data)  # no newline in a megabyte: not a log line; take it as one bad line
            data = data[:cut]
        return data, final

    def _item(self, w: _Work, data: bytes, final: bool, p: metpx.ParsedLines) -> _Item:
        row = w.row
        cs = chunk_stats(p, direction=row.direction, client=row.client, machine=self.machine, slot=row.seq,
                         carry=row.carry, max_latency=self.settings.max_latency)
        new = replace(row, carry=cs.carry, counters=dict(row.counters))
        new.offset = row.offset + len(data)
        new.lines = row.lines + len(p)
        new.anchor = (row.anchor + data)[-lf.ANCHOR_BYTES:]
        for key, kind in (("transfers", "transfer"), ("duplicates", "duplicate"), ("errors", "error"),
                          ("other", "other"), ("bad", "bad")):
            new.counters[key] = new.counters.get(key, 0) + cs.counts[kind]
        if cs.first_at is not None:
            new.first_at = cs.first_at if row.first_at is None else min(row.first_at, cs.first_at)
            new.last_at = cs.last_at if row.last_at is None else max(row.last_at, cs.last_at or row.last_at)
        if final and (w.cand.compressed or not w.cand.name.current):
            new.state = DONE
            self._drop_reader(row.id)
        rejected = []
        room = self.settings.keep_rejected - row.counters.get("bad", 0)
        for i in cs.bad_lines[:max(room, 0)].tolist():
            a, b = int(p.starts[i]), int(p.ends[i])
            excerpt = data[a:b].rstrip(b"\r\n")[:_EXCERPT].decode("utf-8", "replace")
            reason = metpx.REASONS.get(int(p.reason[i]), "unreadable line")
            rejected.append((f"{reason}: {excerpt!r}", row.lines + i + 1, row.offset + a))
        w.row = new
        return _Item(new, row, cs, rejected, len(data), len(p))

    def _close(self, w: _Work, now: float) -> _Item:
        """A rotated or compressed file read to its end: mark it done (no samples)."""
        row = w.row
        new = replace(row, state=DONE, counters=dict(row.counters))
        w.row = new
        empty = ChunkStats([], row.carry, {}, None, None, np.zeros(0, np.int64))
        self._drop_reader(row.id)
        return _Item(new, row, empty, [], 0, 0)

    # --- commit ---------------------------------------------------------------------
    def _commit(self, items: list[_Item], now: float) -> set[int]:
        """One transaction: each item's samples (series or outbox), rejections and new
        checkpoint.  Returns the ids of the files whose items were committed; an item whose
        checkpoint moved meanwhile is dropped (its bytes are read again from the new one)."""
        hour = int(now // 3600)
        kind = "series" if self.local else "tail"
        committed: set[int] = set()
        samples = 0
        with self.store.transaction() as conn:
            for it in items:
                cur = conn.execute("SELECT generation, offset FROM tail_files WHERE id = ?", (it.row.id,)).fetchone()
                if cur is None or tuple(cur) != (it.before.generation, it.before.offset):
                    self.status.stale += 1
                    log.info("tail: checkpoint of %s moved meanwhile (rewind or restore); reading it again",
                             it.row.path)
                    continue
                batch_id = None
                if it.stats.samples or it.rejected or it.nbytes:
                    batch_id = state.open_batch(conn, self.store, it.row, start=it.before, hour=hour, kind=kind,
                                                now=now)
                    if self.local and it.stats.samples:
                        res = seriesio.write_in(self.series, conn, it.stats.samples, batch_id=batch_id,
                                                source=f"tail:{self.machine}", now=now)
                        if res.rejected:
                            # e.g. log times beyond the future tolerance (a wrong tail_zone) or
                            # older than every tier: say so, the lines are not silently lost
                            why = "; ".join(f"{n} {r}" for r, n in res.reasons.items())
                            state.note(conn, self.machine, "samples refused",
                                       f"the series store refused {res.rejected} sample(s) of {it.row.path}: {why}",
                                       now=now, row=it.row)
                            log.warning("tail: %d sample(s) of %s refused: %s", res.rejected, it.row.path, why)
                    if self.push and it.stats.samples:
                        from telmon.tail import push

                        push.enqueue_samples(conn, self.machine, batch_id, it.stats.samples, now=now)
                    if it.rejected:
                        state.reject_lines(conn, it.row, it.rejected, batch_id=batch_id, now=now)
                    state.extend_batch(conn, batch_id, end_offset=it.row.offset, first_at=it.stats.first_at,
                                       last_at=it.stats.last_at, samples=it.stats.sample_count, pushed=self.push,
                                       now=now)
                if it.row.state == DONE and it.before.state != DONE:
                    state.note(conn, self.machine, "finished", f"{it.row.path} read to its end "
                               f"({it.row.lines} lines)", now=now, row=it.row)
                if not state.save(conn, it.row, expect_generation=it.before.generation,
                                  expect_offset=it.before.offset, now=now):
                    raise TelmonError(f"checkpoint of {it.row.path} changed during the commit")
                committed.add(it.row.id)
                samples += it.stats.sample_count
        self.status.commits += 1
        self.status.last_commit_at = now
        self.status.lines += sum(it.nlines for it in items if it.row.id in committed)
        self.status.bytes += sum(it.nbytes for it in items if it.row.id in committed)
        self.status.samples += samples
        return committed
