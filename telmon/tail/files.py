"""Log files on disk: finding them, telling them apart, and reading them from an offset.

A file is known by its device and inode while it is a plain file, and by a fingerprint of its
first bytes (uncompressed) wherever its content went: a rotated file compressed to ``.gz``,
a copy left by copytruncate, a file moved across file systems.  The fingerprint grows with
the file up to FP_BYTES, so a file first seen nearly empty is still recognised later.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import os
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from telmon.tail.names import LogName, log_name

FP_BYTES = 1024  # the fingerprint covers at most this many first bytes
FP_MIN = 64  # a shorter fingerprint is too weak to claim that two files are one
ANCHOR_BYTES = 256  # the last bytes read, kept to tell a rewritten file from a new one
_COPY = 1 << 20


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file matching the patterns, as seen by one scan."""

    path: str
    name: LogName
    dev: int
    inode: int
    size: int  # bytes on disk (compressed size for .gz)
    mtime_ns: int

    @property
    def compressed(self) -> bool:
        return self.name.compressed

    @property
    def key(self) -> tuple[int, int, int, int]:
        return (self.dev, self.inode, self.size, self.mtime_ns)


def scan(dirs: Iterable[str | Path], patterns: Iterable[str]) -> list[Candidate]:
    """Regular files directly in ``dirs`` whose names match a pattern and a tx_/rx_ log name.
    A folder that cannot be read is skipped (the caller notes it)."""
    pats = list(patterns)
    out = []
    for d in dirs:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if not any(fnmatch.fnmatchcase(e.name, p) for p in pats):
                continue
            name = log_name(e.name)
            if name is None:
                continue
            try:
                st = e.stat(follow_symlinks=True)
            except OSError:
                continue  # vanished between listing and stat
            if not os.path.isfile(e.path):
                continue
            out.append(Candidate(e.path, name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    out.sort(key=lambda c: (c.name.direction, c.name.client, c.mtime_ns, c.path))
    return out


def fingerprint(head: bytes) -> str:
    return hashlib.blake2b(head, digest_size=16).hexdigest()


class NotReady(Exception):
    """A compressed file that is still being written (its stream ends early)."""


class Moved(NotReady):
    """The path no longer names the file it named when it was scanned (a rename rotation put
    another file there): whatever is read through it belongs to another file."""


def _check_ident(fd: int, path: str, ident: tuple[int, int] | None) -> None:
    if ident is None:
        return
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != tuple(ident):
        raise Moved(f"{path} is now another file (inode {st.st_ino}, expected {ident[1]})")


@contextmanager
def _opened(path: str, compressed: bool, ident: tuple[int, int] | None) -> Iterator[BinaryIO]:
    """The file at ``path`` opened for reading (decompressed if ``compressed``), after
    checking through the open descriptor that it is still the file ``ident`` (device, inode)
    names: a path can change hands between a scan and a read, an open descriptor cannot."""
    with open(path, "rb") as raw:
        _check_ident(raw.fileno(), path, ident)
        if not compressed:
            yield raw
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
            yield gz  # type: ignore[misc]


def read_head(path: str, compressed: bool, n: int = FP_BYTES, *, ident: tuple[int, int] | None = None) -> bytes:
    """The first ``n`` bytes of the (uncompressed) content; with ``ident``, only if ``path``
    is still that (device, inode), else :class:`Moved`."""
    try:
        with _opened(path, compressed, ident) as f:
            return f.read(n)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise NotReady(str(exc)) from None


def gzip_size(path: str) -> int:
    """Uncompressed size of a .gz from its trailer (modulo 4 GiB; an estimate for progress)."""
    try:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            return int.from_bytes(f.read(4), "little")
    except OSError:
        return 0


def find_anchor(path: str, compressed: bool, anchor: bytes, *, ident: tuple[int, int] | None = None) -> int:
    """Offset where ``anchor`` starts in the file's content, or -1 (also when ``path`` is no
    longer the file ``ident`` names).  Reads in chunks with an overlap, so a large file is
    searched without holding it whole."""
    if not anchor:
        return -1
    overlap = len(anchor) - 1
    try:
        with _opened(path, compressed, ident) as f:
            done = 0
            tail = b""
            while True:
                block = f.read(_COPY * 4)
                if not block:
                    return -1
                buf = tail + block
                at = buf.find(anchor)
                if at >= 0:
                    return done - len(tail) + at
                tail = buf[-overlap:] if overlap else b""
                done += len(block)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, Moved):
        return -1


class Reader:
    """Reads one file's content from an offset: plain files with pread, .gz files through a
    decompressor kept open between calls (reopening would decompress the prefix again).

    With ``ident`` (device, inode), every open checks through the descriptor that ``path``
    still names that file and raises :class:`Moved` if not: a rename rotation between the
    scan and the read must not let the new file's bytes be read at the old file's offset."""

    def __init__(self, path: str, compressed: bool, ident: tuple[int, int] | None = None) -> None:
        self.path = path
        self.compressed = compressed
        self.ident = ident
        self._gz: gzip.GzipFile | None = None
        self._raw: BinaryIO | None = None
        self._pos = 0
        # the last bytes decompressed: the caller gives back a partial last line, and
        # re-reading it from here beats decompressing the whole prefix again
        self._back = b""

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset``; fewer at the end of the content."""
        if not self.compressed:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                _check_ident(fd, self.path, self.ident)
                return os.pread(fd, size, offset)
            finally:
                os.close(fd)
        prefix = b""
        if self._gz is not None and self._pos - len(self._back) <= offset <= self._pos:
            prefix = self._back[len(self._back) - (self._pos - offset):] if offset < self._pos else b""
        try:
            if self._gz is None or not (self._pos - len(self._back) <= offset <= self._pos):
                self.close()
                raw = open(self.path, "rb")
                try:
                    _check_ident(raw.fileno(), self.path, self.ident)
                except BaseException:
                    raw.close()
                    raise
                self._raw = raw
                self._gz = gzip.GzipFile(fileobj=raw, mode="rb")
                self._gz.seek(offset)  # type: ignore[union-attr]
                self._pos = offset
            more = self._gz.read(max(size - len(prefix), 0))  # type: ignore[union-attr]
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            self.close()
            raise NotReady(str(exc)) from None
        self._pos += len(more)
        data = prefix + more
        self._back = data[-(1 << 20):]
        return data

    def close(self) -> None:
        if self._gz is not None:
            self._gz.close()
            self._gz = None
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        self._back = b""
