"""A small ctypes binding to Linux inotify(7), just what ``ingest/watch.py`` needs.

No third-party watcher: watchdog's default mask lost 60-67% of a 10,000-file burst to queue
overflows (DESIGN.md, "Measured on a machine like yours"), so the watcher subscribes to a
narrow mask and treats ``IN_Q_OVERFLOW`` as "rescan now". This module only wraps the
syscalls; the policy lives in ``watch.py``.

``Inotify()`` raises ``OSError`` when inotify is unavailable (not Linux, ``EMFILE`` from
``fs.inotify.max_user_instances``, ...); ``fs_type_of`` tells where it cannot see (NFS...).
Callers fall back to polling.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import re
import struct
from typing import NamedTuple

# Event bits, from <sys/inotify.h>.
IN_ACCESS = 0x00000001
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_CLOSE_NOWRITE = 0x00000010
IN_OPEN = 0x00000020
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
# Set by the kernel only.
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ISDIR = 0x40000000
# Flags for inotify_add_watch.
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
# inotify_init1 flags are O_NONBLOCK / O_CLOEXEC, whose values differ on a few architectures.
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

_EVENT_NAMES = ("ACCESS MODIFY ATTRIB CLOSE_WRITE CLOSE_NOWRITE OPEN MOVED_FROM MOVED_TO CREATE "
                "DELETE DELETE_SELF MOVE_SELF UNMOUNT Q_OVERFLOW IGNORED ISDIR").split()

# struct inotify_event { int wd; uint32_t mask; uint32_t cookie; uint32_t len; char name[]; }
_HEADER = struct.Struct("iIII")
HEADER_SIZE = _HEADER.size  # 16

# 256 KiB holds ~8,000 events with short names per read(2): a burst is drained in a few calls
# instead of one 4 KiB read per ~128 events, which is what lets the reader keep ahead of
# the kernel queue (max_queued_events, 16,384 by default).
DEFAULT_BUFFER_SIZE = 256 * 1024


class InotifyEvent(NamedTuple):
    wd: int
    mask: int
    cookie: int
    name: bytes  # without the NUL padding; b"" for events about the watched directory itself


def describe_mask(mask: int) -> str:
    """``"CREATE|ISDIR"``-style text for logs."""
    return "|".join(n for n in _EVENT_NAMES if mask & globals()["IN_" + n]) or hex(mask)


def parse_events(buf: bytes | bytearray | memoryview,
                 size: int | None = None) -> list[InotifyEvent]:
    """Decode the first ``size`` bytes of a read(2) on an inotify fd into events.

    The kernel only ever returns whole events, so a truncated tail means a bug: ValueError.
    """
    view = memoryview(buf)
    end = len(view) if size is None else size
    events: list[InotifyEvent] = []
    offset = 0
    unpack = _HEADER.unpack_from
    while offset < end:
        if offset + HEADER_SIZE > end:
            raise ValueError(f"truncated inotify event header at offset {offset}")
        wd, mask, cookie, length = unpack(view, offset)
        offset += HEADER_SIZE
        if offset + length > end:
            raise ValueError(f"truncated inotify event name at offset {offset}")
        name = bytes(view[offset:offset + length]).rstrip(b"\0") if length else b""
        offset += length
        events.append(InotifyEvent(wd, mask, cookie, name))
    return events


@functools.cache
def _libc() -> ctypes.CDLL:
    """Load libc once, on first use rather than at import (no work at import)."""
    path = ctypes.util.find_library("c")
    lib = ctypes.CDLL(path, use_errno=True)
    try:
        lib.inotify_init1.argtypes = [ctypes.c_int]
        lib.inotify_init1.restype = ctypes.c_int
        lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        lib.inotify_add_watch.restype = ctypes.c_int
        lib.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.inotify_rm_watch.restype = ctypes.c_int
    except AttributeError as exc:  # not Linux: no such symbols
        raise OSError(errno.ENOSYS, f"inotify is not available: {exc}") from None
    return lib


def _raise_errno(what: str, path: str | bytes | None = None) -> None:
    code = ctypes.get_errno()
    if path is None:
        raise OSError(code, f"{what}: {os.strerror(code)}")
    raise OSError(code, f"{what}: {os.strerror(code)}", os.fsdecode(path))


class Inotify:
    """One inotify instance: a non-blocking, close-on-exec fd plus its watches.

    Not thread-safe; one thread owns it. ``read_events`` never blocks: wait for readability
    with select/poll on ``fileno()`` first.
    """

    def __init__(self, *, buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        lib = _libc() if os.name == "posix" else None
        if lib is None:
            raise OSError(errno.ENOSYS, "inotify is only available on Linux")
        fd = lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            _raise_errno("inotify_init1")
        self._fd = fd
        self._lib = lib
        self._buf = bytearray(buffer_size)

    def fileno(self) -> int:
        if self._fd < 0:
            raise ValueError("inotify instance is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def add_watch(self, path: str | bytes | os.PathLike[str], mask: int) -> int:
        """Watch ``path``; returns its watch descriptor.

        Watching an inode that is already watched returns the same descriptor (and replaces
        its mask): the watcher relies on that to re-point a renamed directory to its new path.
        Raises OSError: ENOSPC when fs.inotify.max_user_watches is reached, ENOENT, EACCES,
        ENOTDIR (with IN_ONLYDIR).
        """
        raw = os.fsencode(path)
        wd = self._lib.inotify_add_watch(self.fileno(), raw, mask)
        if wd < 0:
            _raise_errno("inotify_add_watch", raw)
        return int(wd)

    def rm_watch(self, wd: int) -> None:
        """Stop watching; an already-gone watch (EINVAL) is not an error."""
        if self._lib.inotify_rm_watch(self.fileno(), wd) < 0:
            code = ctypes.get_errno()
            if code != errno.EINVAL:
                raise OSError(code, f"inotify_rm_watch: {os.strerror(code)}")

    def read_events(self, max_reads: int = 64) -> list[InotifyEvent]:
        """Everything queued now: reads until EAGAIN (or ``max_reads`` full buffers, so a
        caller facing an endless stream still gets control back)."""
        fd = self.fileno()
        events: list[InotifyEvent] = []
        for _ in range(max_reads):
            try:
                # readv into one reusable buffer: no 256 KiB allocation per read.
                n = os.readv(fd, [self._buf])
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            if n <= 0:
                break
            events.extend(parse_events(self._buf, n))
        return events

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)  # the kernel drops every watch with the instance

    def __enter__(self) -> Inotify:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # last resort: never leak the fd
        if getattr(self, "_fd", -1) >= 0:
            self.close()


# inotify only sees changes made through this kernel: on these, other hosts' writes are silent.
REMOTE_FS_TYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "sshfs", "9p", "afs", "ceph",
    "fuse.ceph", "glusterfs", "fuse.glusterfs", "lustre", "gpfs", "beegfs", "ncpfs", "coda",
    "fuse.s3fs", "fuse.rclone", "fuse.gcsfuse", "fuse.juicefs", "davfs", "fuse.davfs2",
    "virtiofs", "vboxsf", "fuse.vmhgfs-fuse",
})


def read_mount_table() -> str:
    """This process's mount table (mountinfo, else /proc/mounts); "" where there is none."""
    for name in ("/proc/self/mountinfo", "/proc/mounts"):
        try:
            with open(name, encoding="utf-8", errors="surrogateescape") as f:
                return f.read()
        except OSError:
            continue
    return ""


def fs_type_of(mount_table: str, path: str) -> str | None:
    """Filesystem type of absolute ``path`` (symlinks resolved) from mount table text
    (/proc/self/mountinfo or /proc/mounts format): the longest mount point holding it, a
    later line winning a tie (mounted on top). None if nothing matches."""
    best, best_len = None, -1
    for line in mount_table.splitlines():
        if " - " in line:  # mountinfo: id parent maj:min root mount_point opts [tags] - type src
            left, _, right = line.partition(" - ")
            lf, rf = left.split(), right.split()
            if len(lf) < 5 or not rf:
                continue
            mount_point, fstype = lf[4], rf[0]
        else:  # /proc/mounts: source mount_point type options dump pass
            fields = line.split()
            if len(fields) < 3:
                continue
            mount_point, fstype = fields[1], fields[2]
        # The kernel escapes space, tab, newline and backslash as \040-style octal.
        mount_point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), mount_point)
        inside = mount_point == "/" or path == mount_point or path.startswith(mount_point + "/")
        if inside and len(mount_point) >= best_len:
            best, best_len = fstype, len(mount_point)
    return best
