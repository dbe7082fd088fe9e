"""Series writes and reverts on a connection the caller already holds inside a transaction.

Exactly-once needs the statistics and the checkpoint that produced them in ONE transaction.
``SeriesStore.write`` and ``SeriesStore.revert`` open their own (``store.transaction()``),
so here they run against a view of the store whose ``transaction()`` hands back the
caller's connection (no BEGIN, no COMMIT) and whose ``new_batch()`` hands back the caller's
batch: the rollup's own public code path, unchanged, inside the tailer's transaction.

When the rollup package offers ``SeriesStore.write_in(conn, samples, *, batch_id, source,
now)`` and ``SeriesStore.revert_in(conn, batch_id, *, now)``, those are used instead (the
entry points asked for in docs/transfers.md).
"""

from __future__ import annotations

import contextlib
import copy
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from telmon.rollup.results import RevertResult, WriteResult

Samples = Sequence[tuple[str, np.ndarray, np.ndarray]]


class _InTransaction:
    """The store as seen from inside one of its own transactions."""

    def __init__(self, store: Any, conn: sqlite3.Connection, batch_id: int) -> None:
        self._store = store
        self._conn = conn
        self._batch_id = batch_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        yield self._conn

    def new_batch(self, conn: sqlite3.Connection, kind: str, source: str | None, now: float) -> int:
        return self._batch_id


def _view(series: Any, conn: sqlite3.Connection, batch_id: int) -> Any:
    view = copy.copy(series)
    view.store = _InTransaction(series.store, conn, batch_id)
    # Caches start empty in a view: what it would cache belongs to a transaction that the
    # caller may still roll back, and must not leak into the shared store object.
    for name, value in list(vars(view).items()):
        if isinstance(value, dict):
            setattr(view, name, {})
    return view


def write_in(series: Any, conn: sqlite3.Connection, samples: Samples, *, batch_id: int, source: str | None,
             now: float) -> WriteResult:
    """Add ``samples`` to ``batch_id`` (a batch of kind 'series' the caller made or reuses)."""
    native = getattr(series, "write_in", None)
    if callable(native):
        return native(conn, samples, batch_id=batch_id, source=source, now=now)  # type: ignore[no-any-return]
    if not samples:
        return WriteResult(batch_id=batch_id)
    before = conn.execute("SELECT records FROM batches WHERE id = ?", (batch_id,)).fetchone()
    result: WriteResult = _view(series, conn, batch_id).write(samples, source=source, now=now)
    # write() sets the batch's record count to its own; a tail batch gathers many writes
    conn.execute("UPDATE batches SET records = ? WHERE id = ?", ((before[0] if before else 0) + result.accepted,
                                                               batch_id))
    result.batch_id = batch_id
    return result


def revert_in(series: Any, conn: sqlite3.Connection, batch_id: int, *, now: float) -> RevertResult:
    """Take a batch's samples out of the series (the rollup's revert, in this transaction)."""
    native = getattr(series, "revert_in", None)
    if callable(native):
        return native(conn, batch_id, now=now)  # type: ignore[no-any-return]
    return _view(series, conn, batch_id).revert(batch_id, now=now)  # type: ignore[no-any-return]
