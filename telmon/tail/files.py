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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

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


def read_head(path: str, compressed: bool, n: int = FP_BYTES) -> bytes:
    """The first ``n`` bytes of the (uncompressed) content."""
    if not compressed:
        with open(path, "rb") as f:
            return f.read(n)
    try:
        with gzip.open(path, "rb") as f:
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


def find_anchor(path: str, compressed: bool, anchor: bytes) -> int:
    """Offset where ``anchor`` starts in the file's content, or -1.  Reads in chunks with an
    overlap, so a large file is searched without holding it whole."""
    if not anchor:
        return -1
    opener = gzip.open if compressed else open
    overlap = len(anchor) - 1
    try:
        with opener(path, "rb") as f:  # type: ignore[operator]
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
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile):
        return -1


class Reader:
    """Reads one file's content from an offset: plain files with pread, .gz files through a
    decompressor kept open between calls (reopening would decompress the prefix again)."""

    def __init__(self, path: str, compressed: bool) -> None:
        self.path = path
        self.compressed = compressed
        self._gz: gzip.GzipFile | None = None
        self._pos = 0
        # the last bytes decompressed: the caller gives back a partial last line, and
        # re-reading it from here beats decompressing the whole prefix again
        self._back = b""

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset``; fewer at the end of the content."""
        if not self.compressed:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                return os.pread(fd, size, offset)
            finally:
                os.close(fd)
        prefix = b""
        if self._gz is not None and self._pos - len(self._back) <= offset <= self._pos:
            prefix = self._back[len(self._back) - (self._pos - offset):] if offset < self._pos else b""
        try:
            if self._gz is None or not (self._pos - len(self._back) <= offset <= self._pos):
                self.close()
                self._gz = gzip.open(self.path, "rb")  # type: ignore[assignment]
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
        self._back = b""
