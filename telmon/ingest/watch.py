"""Watch folders and report each complete file: inotify where it can see, polling where it
cannot (NFS and friends), and a rescan whenever events may have been lost.

``Watcher(roots, on_file).start()`` calls ``on_file(path)`` from one daemon thread:
- on inotify roots, after close-after-write or a move in (rsync's ``.name.tmp`` -> ``name``),
  never on create nor while a file is being written;
- for files a scan finds (catch-up at start, new folders, overflow rescans, the periodic
  reconcile, poll passes) that ``is_known`` does not claim; a file modified less than
  ``settle`` seconds ago is held until its (size, mtime_ns) has been stable that long;
- on polled roots, once (size, mtime_ns) is stable for ``settle``, and again when it changes.
Regular files only, never symlinks. A path may be reported twice (a scan racing a
close-write); the pipeline de-duplicates by content hash.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import re
import select
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from telmon.ingest import inotify as ino
from telmon.ingest.inotify import REMOTE_FS_TYPES, fs_type_of, read_mount_table

DEFAULT_IGNORE = (".*", "*.tmp", "*.part", "*.swp", "*~")  # base names of files and folders
DEFAULT_POLL_INTERVAL = 5.0  # seconds, for roots that fall back to polling

# A narrow mask (DESIGN.md, "Measured on a machine like yours": watchdog's default mask lost
# 60-67% of a 10,000-file burst; close-write + moved-to + create lost none). IN_CREATE is
# acted on for folders only; the *_SELF events keep the watch table right.
_DIR_MASK = (ino.IN_CLOSE_WRITE | ino.IN_MOVED_TO | ino.IN_DELETE_SELF | ino.IN_MOVE_SELF
             | ino.IN_ONLYDIR | ino.IN_EXCL_UNLINK)
_MAX_TICK = 0.2  # the loop reads the (injected) clock at least this often, in seconds
# An overflow's rescan waits this long (or 4x the last rescan's duration), so a storm of
# overflows costs a few rescans: with a 32-event queue, a 10,000-file burst overflowed 50-110
# times; rescanning at once for each made 30-70 full rescans, the delay 3-5.
_OVERFLOW_RESCAN_DELAY = 0.2
_INF = float("inf")


@dataclass
class WatchStats:
    """Counters, written by the watcher thread, readable from any thread."""

    mode: str = "inotify"  # "inotify" if any root uses it, else "poll"
    events: int = 0  # inotify events read
    files_emitted: int = 0  # on_file calls
    overflows: int = 0  # IN_Q_OVERFLOW events
    rescans: int = 0  # full rescans: overflow, refused watch, reconcile, scan_now
    dirs_watched: int = 0
    last_error: str | None = None
    fallback_reason: str | None = None  # why a root is polled although inotify was asked for
    errors: int = 0  # on_file / is_known exceptions, unreadable folders
    watch_failures: int = 0  # folders the kernel refused to watch (ENOSPC)
    poll_passes: int = 0  # passes over polled roots and unwatched folders
    roots: dict[str, str] = field(default_factory=dict)  # root -> inotify | poll | missing


@dataclass
class _Root:
    path: str
    mode: str = "missing"  # "inotify" | "poll" | "missing"
    interval: float = DEFAULT_POLL_INTERVAL  # poll interval, or retry interval while missing
    next_poll: float = 0.0
    scanned: bool = False  # a first pass trusts mtime age; later poll passes watch stability
    wd: int | None = None
    unwatched: set[str] = field(default_factory=set)  # folders the kernel refused to watch


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)


class Watcher:
    """Calls ``on_file(path)`` for each complete file under ``roots``; see the module doc."""

    def __init__(self, roots: Sequence[str | Path], on_file: Callable[[Path], None], *,
                 ignore: Sequence[str] = DEFAULT_IGNORE, recursive: bool = True,
                 poll_interval: float | None = None, settle: float = 1.0,
                 reconcile_interval: float | None = 300.0,
                 is_known: Callable[[Path, os.stat_result], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 logger: logging.Logger | None = None) -> None:
        if isinstance(roots, (str, os.PathLike)):
            roots = [roots]
        if (poll_interval is not None and poll_interval <= 0) or settle < 0 or (
                reconcile_interval is not None and reconcile_interval <= 0):
            raise ValueError("poll_interval and reconcile_interval must be > 0 or None; "
                             "settle >= 0")
        self._root_paths = list(dict.fromkeys(os.path.abspath(r) for r in roots))
        self._on_file = on_file
        self._ignore_re = re.compile("|".join(map(fnmatch.translate, ignore))) if ignore else None
        self._recursive = recursive
        self._poll_interval = poll_interval
        self._settle = settle
        self._reconcile_interval = reconcile_interval
        self._is_known = is_known
        self._clock = clock
        self._log = logger or logging.getLogger(__name__)
        # Missing roots and refused folders are looked at again this often (cheap: a stat).
        self._retry_interval = poll_interval or min(DEFAULT_POLL_INTERVAL,
                                                    reconcile_interval or _INF)
        self.stats = WatchStats(mode="poll" if poll_interval is not None else "inotify")
        self._thread: threading.Thread | None = None
        self._stop, self._rescan, self._ready = (threading.Event() for _ in range(3))
        self._wake_lock = threading.Lock()
        self._wake_r = self._wake_w = -1
        self._reset()

    def _reset(self) -> None:
        """Per-run state, touched only by the watcher thread once it runs."""
        self._roots = [_Root(p) for p in self._root_paths]
        self._ino: ino.Inotify | None = None
        self._wd_path: dict[int, str] = {}
        self._path_wd: dict[str, int] = {}
        self._seen: dict[str, tuple[int, int]] = {}  # reported or known at (size, mtime_ns)
        self._pending: dict[str, tuple[int, int, float]] = {}  # size, mtime_ns, stable since
        self._next_pending = self._next_reconcile = self._rescan_at = _INF
        self._rescan_cost = 0.0  # how long the last full rescan took
        self._reasons: dict[str, None] = {}
        self._limit_warned = False

    # -- public API ----------------------------------------------------------------------

    def start(self) -> None:
        """Add the watches (returns once they are in place), then catch up and watch in a
        daemon thread. RuntimeError if already running."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("watcher already started")
        self._reset()
        for event in (self._stop, self._rescan, self._ready):
            event.clear()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._run, name="telmon-watch", daemon=True)
        self._thread.start()
        self._ready.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and join the thread, which closes its fds as it exits."""
        self._stop.set()
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._log.warning("watcher thread still busy after %.1fs (in on_file?); it "
                                  "exits when that call returns", timeout)

    def scan_now(self) -> None:
        """Ask for a full rescan of every root, soon (thread-safe)."""
        self._rescan.set()
        self._wake()

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the thread ------------------------------------------------------------------------

    def _wake(self) -> None:
        with self._wake_lock:  # never write to an fd number the thread closed (and reused)
            if self._wake_w >= 0:
                try:
                    os.write(self._wake_w, b"x")
                except BlockingIOError:
                    pass  # full of wake-ups already

    def _run(self) -> None:
        candidates: list[tuple[str, os.stat_result]] | None = None
        try:
            candidates = self._setup()
        except Exception as exc:  # a bug: say so, close the fds, end
            self._note_error(f"watcher setup failed: {exc!r}", exc_info=True)
        finally:
            self._ready.set()
        try:
            if candidates is not None:
                for path, st in candidates:  # the catch-up, now that every watch is in place
                    if self._stop.is_set():
                        break
                    self._consider(path, st, trust_age=True)
                self._loop()
        finally:
            if self._ino is not None:
                self._ino.close()
            self._wd_path.clear()
            self.stats.dirs_watched = 0
            with self._wake_lock:
                os.close(self._wake_r)
                os.close(self._wake_w)
                self._wake_r = self._wake_w = -1

    def _setup(self) -> list[tuple[str, os.stat_result]]:
        now = self._clock()
        if self._reconcile_interval is not None:
            self._next_reconcile = now + self._reconcile_interval
        if self._poll_interval is None:
            try:
                self._ino = ino.Inotify()
            except OSError as exc:
                self._fallback(f"inotify unavailable ({exc}); polling every "
                               f"{DEFAULT_POLL_INTERVAL:g}s")
        candidates: list[tuple[str, os.stat_result]] = []
        for root in self._roots:
            self._attach(root, now, candidates)
        self._update_stats()
        self._log.info("watching %s (%d folders under inotify)", ", ".join(
            f"{r.path} [{r.mode}]" for r in self._roots), len(self._wd_path))
        return candidates

    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        if self._ino is not None:
            poller.register(self._ino.fileno(), select.POLLIN)
        while not self._stop.is_set():
            try:
                wait = max(0.0, min(self._next_due() - self._clock(), _MAX_TICK))
                ready = {fd for fd, _ in poller.poll(wait * 1000)}
                if self._stop.is_set():
                    break
                if self._wake_r in ready:
                    os.read(self._wake_r, 4096)
                if self._ino is not None and self._ino.fileno() in ready:
                    self._handle_events(self._ino.read_events())
                self._tick()
            except Exception as exc:  # keep watching; the wait avoids a hot loop
                self._note_error(f"watcher loop error: {exc!r}", exc_info=True)
                self._stop.wait(_MAX_TICK)

    def _next_due(self) -> float:
        due = min(self._next_pending, self._next_reconcile, self._rescan_at)
        for root in self._roots:
            if root.mode != "inotify" or root.unwatched:
                due = min(due, root.next_poll)
        return due

    def _tick(self) -> None:
        now = self._clock()
        if self._rescan.is_set() or now >= self._rescan_at:
            self._full_rescan()
        elif now >= self._next_reconcile:
            self._log.debug("periodic reconcile scan")
            self._full_rescan()
        now = self._clock()
        for root in self._roots:
            if self._stop.is_set() or now < root.next_poll:
                continue
            if root.mode == "missing":
                self._retry_root(root, now)
            elif root.mode == "poll":
                self._poll_root(root, now)
            elif root.unwatched:
                # Refused folders are polled one level each: their sub-folders are either
                # watched or in the set themselves.
                for folder in list(root.unwatched):
                    if not self._walk(folder, root, trust_age=True, new_subdirs_only=True):
                        root.unwatched.discard(folder)  # gone
                self.stats.poll_passes += 1
                root.next_poll = now + self._retry_interval
        self._check_pending(self._clock())
        self._update_stats()

    def _update_stats(self) -> None:
        s = self.stats
        s.dirs_watched = len(self._wd_path)
        s.roots = {r.path: r.mode for r in self._roots}
        s.mode = ("inotify" if self._ino is not None and any(r.mode != "poll" for r in self._roots)
                  else "poll")
        s.fallback_reason = "; ".join(self._reasons) or None

    # -- roots ---------------------------------------------------------------------------

    def _attach(self, root: _Root, now: float,
                candidates: list[tuple[str, os.stat_result]] | None) -> None:
        """Choose the root's mode and start on it; scanned files go to ``candidates`` if given."""
        root.scanned, root.wd = False, None
        root.unwatched.clear()
        if not os.path.isdir(root.path):
            if root.mode != "missing" or root.next_poll == 0.0:
                self._log.warning("watch root %s does not exist (as a folder); looking for it "
                                  "every %gs", root.path, self._retry_interval)
            return self._set_mode(root, "missing", now + self._retry_interval)
        if self._poll_interval is not None:
            return self._set_mode(root, "poll", now, self._poll_interval)
        if self._ino is None:
            return self._set_mode(root, "poll", now)
        fstype = fs_type_of(read_mount_table(), os.path.realpath(root.path))
        if fstype in REMOTE_FS_TYPES:
            self._fallback(f"{root.path} is on {fstype}: inotify cannot see changes made by "
                           f"other hosts; polling every {DEFAULT_POLL_INTERVAL:g}s")
            return self._set_mode(root, "poll", now)
        try:
            root.wd = self._ino.add_watch(root.path, self._mask(root.path, root))
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EMFILE):
                self._fallback(f"{root.path}: inotify watch refused ({exc.strerror}; see "
                               f"fs.inotify.max_user_watches); polling every "
                               f"{DEFAULT_POLL_INTERVAL:g}s")
                return self._set_mode(root, "poll", now)
            self._log.warning("cannot watch root %s (%s); trying again every %gs",
                              root.path, exc.strerror, self._retry_interval)
            return self._set_mode(root, "missing", now + self._retry_interval)
        self._set_mode(root, "inotify", now + self._retry_interval)  # for refused folders
        self._walk(root.path, root, trust_age=True, candidates=candidates)

    def _set_mode(self, root: _Root, mode: str, next_poll: float,
                  interval: float = DEFAULT_POLL_INTERVAL) -> None:
        root.mode, root.next_poll = mode, next_poll
        root.interval = self._retry_interval if mode == "missing" else interval

    def _fallback(self, reason: str) -> None:
        if reason not in self._reasons:  # once, not at every return of a flapping root
            self._log.warning("%s", reason)
            self._reasons[reason] = None

    def _retry_root(self, root: _Root, now: float) -> None:
        if os.path.isdir(root.path):
            self._log.info("watch root %s exists now; watching it", root.path)
        self._attach(root, now, None)

    def _root_gone(self, root: _Root, how: str) -> None:
        self._log.warning("watch root %s was %s; looking for it every %gs",
                          root.path, how, self._retry_interval)
        if root.mode == "inotify":
            self._unwatch_tree(root.path)
        root.wd = None
        self._set_mode(root, "missing", self._clock() + self._retry_interval)

    def _poll_root(self, root: _Root, now: float) -> None:
        found: set[str] = set()
        ok = self._walk(root.path, root, trust_age=not root.scanned, found=found)
        self.stats.poll_passes += 1
        root.next_poll = now + root.interval
        if not ok:
            return self._root_gone(root, "removed") if not self._stop.is_set() else None
        root.scanned = True
        self._prune(root.path, found)

    def _full_rescan(self) -> None:
        self._rescan.clear()
        self.stats.rescans += 1
        self._limit_warned = False
        self._rescan_at = _INF
        now = self._clock()
        if self._reconcile_interval is not None:
            self._next_reconcile = now + self._reconcile_interval
        for root in self._roots:
            if root.mode == "inotify":
                found: set[str] = set()
                if self._walk(root.path, root, trust_age=True, found=found):
                    self._prune(root.path, found)
            elif root.mode == "poll":
                self._poll_root(root, now)
            else:
                self._retry_root(root, now)
        self._rescan_cost = self._clock() - now

    # -- inotify watches -----------------------------------------------------------------

    def _mask(self, folder: str, root: _Root) -> int:
        mask = _DIR_MASK | (ino.IN_CREATE if self._recursive else 0)
        # A root may be a symlink on purpose; a sub-folder swapped for one is not followed.
        return mask if folder == root.path else mask | ino.IN_DONT_FOLLOW

    def _watch_dir(self, folder: str, root: _Root) -> None:
        assert self._ino is not None
        try:
            wd = self._ino.add_watch(folder, self._mask(folder, root))
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return  # gone or replaced since it was listed
            if exc.errno != errno.ENOSPC:
                return self._note_error(f"cannot watch {folder}: {exc.strerror}")
            if folder not in root.unwatched:  # the watch limit: rescan, then poll the folder
                root.unwatched.add(folder)
                self.stats.watch_failures += 1
                if not self._limit_warned:
                    self._limit_warned = True
                    self._log.warning("cannot watch %s: inotify watch limit reached (see "
                                      "fs.inotify.max_user_watches); rescanning, and polling "
                                      "folders left unwatched every %gs",
                                      folder, self._retry_interval)
                self._rescan.set()
            return
        root.unwatched.discard(folder)
        old = self._wd_path.get(wd)
        if old != folder:  # a new watch, or a renamed folder (same inode, same wd) re-pointed
            if old is not None and self._path_wd.get(old) == wd:
                del self._path_wd[old]
            self._wd_path[wd] = folder
            self._path_wd[folder] = wd
            self.stats.dirs_watched = len(self._wd_path)

    def _forget_wd(self, wd: int) -> None:
        path = self._wd_path.pop(wd, None)
        if path is not None and self._path_wd.get(path) == wd:
            del self._path_wd[path]
        self.stats.dirs_watched = len(self._wd_path)

    def _unwatch_tree(self, top: str) -> None:
        for wd, path in list(self._wd_path.items()):
            if _under(path, top):
                self._forget_wd(wd)
                if self._ino is not None:
                    self._ino.rm_watch(wd)

    def _handle_events(self, events: list[ino.InotifyEvent]) -> None:
        self.stats.events += len(events)
        for ev in events:
            if ev.mask & ino.IN_Q_OVERFLOW:
                self.stats.overflows += 1
                if self._rescan_at == _INF:
                    delay = max(_OVERFLOW_RESCAN_DELAY, 4 * self._rescan_cost)
                    self._log.warning("inotify queue overflowed (see fs.inotify.max_queued_"
                                      "events): events were lost; rescanning in %.1fs", delay)
                    self._rescan_at = self._clock() + delay
            elif ev.mask & ino.IN_IGNORED:
                self._forget_wd(ev.wd)
            elif ev.mask & (ino.IN_DELETE_SELF | ino.IN_MOVE_SELF | ino.IN_UNMOUNT):
                self._folder_gone(ev.wd, ev.mask)
            elif ev.name and ev.wd in self._wd_path:
                name = os.fsdecode(ev.name)
                if self._is_ignored(name):
                    continue
                path = os.path.join(self._wd_path[ev.wd], name)
                if not ev.mask & ino.IN_ISDIR:
                    if ev.mask & (ino.IN_CLOSE_WRITE | ino.IN_MOVED_TO):
                        self._emit_path(path)
                elif self._recursive and (root := self._root_of(path)) is not None:
                    # Watch, then list: files written before the watch existed are found.
                    self._walk(path, root, trust_age=True)

    def _root_of(self, path: str) -> _Root | None:
        roots = [r for r in self._roots if r.mode == "inotify" and _under(path, r.path)]
        return max(roots, key=lambda r: len(r.path), default=None)

    def _folder_gone(self, wd: int, mask: int) -> None:
        folder = self._wd_path.get(wd)
        if folder is None:
            return
        for root in self._roots:
            if root.mode == "inotify" and root.wd == wd:
                how = "moved away" if mask & ino.IN_MOVE_SELF else "removed"
                return self._root_gone(root, how)
        # Renamed inside the tree: IN_MOVED_TO on the new parent came first and re-pointed
        # this wd to the new path. Otherwise it left the tree: drop its watches. (After
        # IN_DELETE_SELF, IN_IGNORED follows and forgets the wd.)
        if mask & ino.IN_MOVE_SELF and not os.path.isdir(folder):
            self._unwatch_tree(folder)

    # -- scanning ------------------------------------------------------------------------

    def _is_ignored(self, name: str) -> bool:
        return self._ignore_re is not None and self._ignore_re.match(name) is not None

    def _walk(self, top: str, root: _Root, *, trust_age: bool, found: set[str] | None = None,
              candidates: list[tuple[str, os.stat_result]] | None = None,
              new_subdirs_only: bool = False) -> bool:
        """Watch (inotify roots) then list each folder under ``top``: no window where a file
        is missed. False if ``top`` could not be listed or the walk was cut short by stop()."""
        watching = root.mode == "inotify" and self._ino is not None
        stack, ok = [top], True
        while stack:
            if self._stop.is_set():
                return False
            folder = stack.pop()
            if watching:
                self._watch_dir(folder, root)
            try:
                with os.scandir(folder) as it:
                    entries = list(it)
            except OSError as exc:
                if not isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                    self._note_error(f"cannot list {folder}: {exc.strerror}")
                ok = ok and folder != top
                continue
            for entry in entries:
                if self._is_ignored(entry.name):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if self._recursive and not (new_subdirs_only and (
                                entry.path in self._path_wd or entry.path in root.unwatched)):
                            stack.append(entry.path)
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue  # vanished meanwhile
                if found is not None:
                    found.add(entry.path)
                if candidates is not None:
                    candidates.append((entry.path, st))
                else:
                    self._consider(entry.path, st, trust_age=trust_age)
        return ok

    def _consider(self, path: str, st: os.stat_result, *, trust_age: bool) -> None:
        """A scan found ``path``: report it, hold it until stable, or skip it as known."""
        sig = (st.st_size, st.st_mtime_ns)
        held = self._pending.get(path)
        if self._seen.get(path) == sig or (held is not None and held[:2] == sig):
            return
        if self._is_known is not None:
            try:
                known = self._is_known(Path(path), st)
            except Exception as exc:
                self._note_error(f"is_known({path}) failed: {exc!r}", exc_info=True)
                known = False
            if known:
                self._seen[path] = sig
                self._pending.pop(path, None)
                return
        # Age is wall time against mtime (the injected clock is monotonic). A young file may
        # still be open by its writer: hold it until size and mtime stop moving.
        if trust_age and time.time() - st.st_mtime >= self._settle:
            return self._emit(path, st)
        now = self._clock()
        self._pending[path] = (sig[0], sig[1], now)
        self._next_pending = min(self._next_pending, now + self._settle)

    def _check_pending(self, now: float) -> None:
        if now < self._next_pending:
            return
        soonest = _INF
        for path, (size, mtime_ns, since) in list(self._pending.items()):
            if self._stop.is_set():
                return
            if since + self._settle > now:
                soonest = min(soonest, since + self._settle)
                continue
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                del self._pending[path]
                continue
            if not stat.S_ISREG(st.st_mode):
                del self._pending[path]
            elif (st.st_size, st.st_mtime_ns) != (size, mtime_ns):  # still moving
                self._pending[path] = (st.st_size, st.st_mtime_ns, now)
                soonest = min(soonest, now + self._settle)
            else:
                self._emit(path, st)
        # At most ~10 passes over the held files per settle period, however spread out.
        self._next_pending = max(soonest, now + max(self._settle / 10, 0.05))

    def _prune(self, top: str, found: set[str]) -> None:
        """Forget files a complete scan of ``top`` did not find: memory follows the tree."""
        for table in (self._seen, self._pending):
            stale = [p for p in table if p not in found and (
                _under(p, top) if self._recursive else os.path.dirname(p) == top)]
            for p in stale:
                del table[p]

    # -- reporting -----------------------------------------------------------------------

    def _emit_path(self, path: str) -> None:
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return  # gone again already
        if stat.S_ISREG(st.st_mode):
            self._emit(path, st)

    def _emit(self, path: str, st: os.stat_result) -> None:
        self._seen[path] = (st.st_size, st.st_mtime_ns)
        self._pending.pop(path, None)
        self.stats.files_emitted += 1
        try:
            self._on_file(Path(path))
        except Exception as exc:
            self._note_error(f"on_file failed for {path}: {exc!r}", exc_info=True)

    def _note_error(self, message: str, *, exc_info: bool = False) -> None:
        self.stats.errors += 1
        self.stats.last_error = message
        self._log.log(logging.ERROR if exc_info else logging.WARNING, "%s", message,
                      exc_info=exc_info)
