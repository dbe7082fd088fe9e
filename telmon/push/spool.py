"""The agent's on-disk spool: snapshots waiting for the receiver, oldest first, bounded.

One file per snapshot (``<sequence>.json``), written to a temporary name and renamed, so a
killed agent leaves whole files only.  Past ``max_bytes`` or ``max_files`` the oldest files
are deleted and counted in ``dropped`` (kept in a file beside them, so the count survives a
restart and the receiver learns about the loss through the ``agent.spool.dropped`` series).
Nothing is dropped below the bound.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from pathlib import Path

_SUFFIX = ".json"


class Spool:
    def __init__(self, directory: str | Path, *, max_bytes: int = 64 * 1024 * 1024, max_files: int = 100_000) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.max_files = int(max_files)
        self._lock = threading.Lock()
        self._files: deque[tuple[int, int]] = deque()  # (sequence, size), oldest first
        self._bytes = 0
        for p in sorted(self.dir.glob("*" + _SUFFIX)):
            try:
                seq, size = int(p.stem), p.stat().st_size
            except (ValueError, OSError):
                continue
            self._files.append((seq, size))
            self._bytes += size
        for p in self.dir.glob("*.tmp"):  # a write cut short by a kill: never acknowledged, never sent
            with contextlib.suppress(OSError):
                p.unlink()
        self._next = (self._files[-1][0] + 1) if self._files else 1
        self.dropped = self._read_dropped()

    # --- counting what was dropped ------------------------------------------------------
    def _read_dropped(self) -> int:
        try:
            return int((self.dir / "dropped").read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _write_dropped(self) -> None:
        tmp = self.dir / "dropped.tmp"
        tmp.write_text(str(self.dropped))
        os.replace(tmp, self.dir / "dropped")

    # --- use ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._files)

    @property
    def bytes(self) -> int:
        return self._bytes

    def _path(self, seq: int) -> Path:
        return self.dir / f"{seq:012d}{_SUFFIX}"

    def add(self, data: bytes) -> int:
        """Keep one snapshot; returns how many old ones were dropped to make room."""
        with self._lock:
            seq = self._next
            self._next += 1
            tmp = self.dir / f"{seq:012d}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, self._path(seq))
            self._files.append((seq, len(data)))
            self._bytes += len(data)
            dropped = 0
            while len(self._files) > 1 and (self._bytes > self.max_bytes or len(self._files) > self.max_files):
                old, size = self._files.popleft()
                with contextlib.suppress(FileNotFoundError):
                    self._path(old).unlink()
                self._bytes -= size
                dropped += 1
            if dropped:
                self.dropped += dropped
                self._write_dropped()
            return dropped

    def oldest(self, n: int, max_bytes: int | None = None) -> list[tuple[int, bytes]]:
        """Up to ``n`` oldest snapshots (sequence, bytes), at most ``max_bytes`` together
        (always at least one)."""
        out: list[tuple[int, bytes]] = []
        total = 0
        with self._lock:
            entries = list(self._files)[:n]
        for seq, size in entries:
            if out and max_bytes is not None and total + size > max_bytes:
                break
            try:
                out.append((seq, self._path(seq).read_bytes()))
            except FileNotFoundError:  # dropped meanwhile
                continue
            total += size
        return out

    def remove(self, seqs: list[int]) -> None:
        """Forget snapshots the receiver acknowledged."""
        gone = set(seqs)
        with self._lock:
            keep = deque()
            for seq, size in self._files:
                if seq in gone:
                    with contextlib.suppress(FileNotFoundError):
                        self._path(seq).unlink()
                    self._bytes -= size
                else:
                    keep.append((seq, size))
            self._files = keep
