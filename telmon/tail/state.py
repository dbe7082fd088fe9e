"""Checkpoints and notes in the store: the ``tail_files`` rows and what goes with them.

Every function takes the caller's connection; nothing here commits.  A checkpoint is saved
only if the row still has the generation and offset the tailer read from (optimistic
concurrency): a rewind, a restore or a second tailer of the same machine bumps or moves them,
and the stale reader's statistics are then dropped with its transaction instead of counted
twice.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import orjson

from telmon.tail import seriesio
from telmon.tail.stats import Carry

ACTIVE, DONE, GONE, REPLACED = "active", "done", "gone", "replaced"

_COLUMNS = ("id, machine, direction, client, seq, path, dev, inode, compressed, fp, fp_len, anchor, offset, lines, "
            "carry, state, generation, size_seen, mtime_ns, changed_at, first_at, last_at, transfers, duplicates, "
            "errors, other, bad, batch_id, batch_hour")


@dataclass(slots=True)
class FileRow:
    """One followed file: identity, checkpoint and counters (a row of tail_files)."""

    id: int
    machine: str
    direction: str
    client: str
    seq: int  # this file's number in its stream: the sample-time slot
    path: str
    dev: int
    inode: int
    compressed: bool
    fp: str
    fp_len: int
    anchor: bytes
    offset: int  # bytes of content consumed (whole lines only)
    lines: int  # lines consumed
    carry: Carry
    state: str
    generation: int
    size_seen: int
    mtime_ns: int
    changed_at: float  # when size or mtime last changed
    first_at: float | None = None
    last_at: float | None = None
    counters: dict[str, int] = field(default_factory=dict)
    batch_id: int | None = None
    batch_hour: int | None = None

    @staticmethod
    def from_db(r: sqlite3.Row | tuple[Any, ...]) -> FileRow:
        return FileRow(
            id=r[0], machine=r[1], direction=r[2], client=r[3], seq=r[4], path=r[5], dev=r[6], inode=r[7],
            compressed=bool(r[8]), fp=r[9], fp_len=r[10], anchor=bytes(r[11]), offset=r[12], lines=r[13],
            carry=Carry.from_json(orjson.loads(r[14])), state=r[15], generation=r[16], size_seen=r[17],
            mtime_ns=r[18], changed_at=r[19], first_at=r[20], last_at=r[21],
            counters={"transfers": r[22], "duplicates": r[23], "errors": r[24], "other": r[25], "bad": r[26]},
            batch_id=r[27], batch_hour=r[28],
        )

    @property
    def stream(self) -> tuple[str, str]:
        return (self.direction, self.client)


def load(conn: sqlite3.Connection, machine: str, states: tuple[str, ...] | None = None) -> list[FileRow]:
    sql = f"SELECT {_COLUMNS} FROM tail_files WHERE machine = ?"
    args: list[Any] = [machine]
    if states:
        sql += f" AND state IN ({','.join('?' * len(states))})"
        args += list(states)
    return [FileRow.from_db(r) for r in conn.execute(sql + " ORDER BY direction, client, seq", args)]


def load_stream(conn: sqlite3.Connection, machine: str, direction: str, client: str) -> list[FileRow]:
    """Every file ever followed of one stream, newest first."""
    return [FileRow.from_db(r) for r in conn.execute(
        f"SELECT {_COLUMNS} FROM tail_files WHERE machine = ? AND direction = ? AND client = ? ORDER BY seq DESC",
        (machine, direction, client))]


def get(conn: sqlite3.Connection, file_id: int) -> FileRow | None:
    r = conn.execute(f"SELECT {_COLUMNS} FROM tail_files WHERE id = ?", (file_id,)).fetchone()
    return None if r is None else FileRow.from_db(r)


def create(conn: sqlite3.Connection, *, machine: str, direction: str, client: str, path: str, dev: int, inode: int,
           compressed: bool, fp: str, fp_len: int, size: int, mtime_ns: int, now: float) -> FileRow:
    seq = conn.execute("SELECT coalesce(max(seq), -1) + 1 FROM tail_files WHERE machine = ? AND direction = ? "
                       "AND client = ?", (machine, direction, client)).fetchone()[0]
    cur = conn.execute(
        "INSERT INTO tail_files(machine, direction, client, seq, path, dev, inode, compressed, fp, fp_len, "
        "size_seen, mtime_ns, changed_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (machine, direction, client, seq, path, dev, inode, int(compressed), fp, fp_len, size, mtime_ns, now, now,
         now),
    )
    row = get(conn, int(cur.lastrowid or 0))
    assert row is not None
    return row


def save(conn: sqlite3.Connection, row: FileRow, *, expect_generation: int, expect_offset: int, now: float) -> bool:
    """Write the row's checkpoint and identity if nobody moved it meanwhile."""
    c = row.counters
    cur = conn.execute(
        "UPDATE tail_files SET path = ?, dev = ?, inode = ?, compressed = ?, fp = ?, fp_len = ?, anchor = ?, "
        "offset = ?, lines = ?, carry = ?, state = ?, generation = ?, size_seen = ?, mtime_ns = ?, changed_at = ?, "
        "first_at = ?, last_at = ?, transfers = ?, duplicates = ?, errors = ?, other = ?, bad = ?, batch_id = ?, "
        "batch_hour = ?, updated_at = ? WHERE id = ? AND generation = ? AND offset = ?",
        (row.path, row.dev, row.inode, int(row.compressed), row.fp, row.fp_len, row.anchor, row.offset, row.lines,
         orjson.dumps(row.carry.to_json()).decode(), row.state, row.generation, row.size_seen, row.mtime_ns,
         row.changed_at, row.first_at, row.last_at, c.get("transfers", 0), c.get("duplicates", 0),
         c.get("errors", 0), c.get("other", 0), c.get("bad", 0), row.batch_id, row.batch_hour, now, row.id,
         expect_generation, expect_offset),
    )
    return cur.rowcount == 1


def note(conn: sqlite3.Connection, machine: str, event: str, detail: str, *, now: float,
         row: FileRow | None = None, path: str | None = None) -> None:
    conn.execute("INSERT INTO tail_notes(at, machine, file_id, path, event, detail) VALUES (?,?,?,?,?,?)",
                 (now, machine, row.id if row else None, path or (row.path if row else None), event, detail))


def open_batch(conn: sqlite3.Connection, store: Any, row: FileRow, *, start: FileRow, hour: int, kind: str,
               now: float) -> int:
    """The file's batch for this collection hour: reused while it is not reverted, else new,
    starting at the checkpoint ``start`` (the one the bytes about to be added were read from).
    A batch is what `telmon revert` takes out, and where a rewind starts reading again."""
    if row.batch_id is not None and row.batch_hour == hour:
        ok = conn.execute("SELECT reverted_at IS NULL FROM batches WHERE id = ?", (row.batch_id,)).fetchone()
        if ok and ok[0]:
            return row.batch_id
    batch_id = int(store.new_batch(conn, kind, f"tail:{row.machine}:{row.path}", now))
    conn.execute(
        "INSERT INTO tail_batches(batch_id, file_id, start_offset, start_state, end_offset) VALUES (?,?,?,?,?)",
        (batch_id, row.id, start.offset, orjson.dumps(snapshot(start)).decode(), start.offset),
    )
    row.batch_id, row.batch_hour = batch_id, hour
    return batch_id


def snapshot(row: FileRow) -> dict[str, Any]:
    """The checkpoint as it stands, to go back to (a rewind restores it exactly)."""
    return {"offset": row.offset, "lines": row.lines, "carry": row.carry.to_json(), "anchor": row.anchor.hex(),
            "counters": row.counters, "first_at": row.first_at, "last_at": row.last_at}


def restore_snapshot(row: FileRow, snap: dict[str, Any]) -> None:
    row.offset, row.lines = int(snap["offset"]), int(snap["lines"])
    row.carry = Carry.from_json(snap["carry"])
    row.anchor = bytes.fromhex(snap["anchor"])
    row.counters = dict(snap["counters"])
    row.first_at, row.last_at = snap["first_at"], snap["last_at"]


def extend_batch(conn: sqlite3.Connection, batch_id: int, *, end_offset: int, first_at: float | None,
                 last_at: float | None, samples: int, pushed: bool, now: float) -> None:
    conn.execute(
        "UPDATE tail_batches SET end_offset = ?, first_at = coalesce(min(first_at, ?), first_at, ?), "
        "last_at = coalesce(max(last_at, ?), last_at, ?), samples = samples + ?, pushed = max(pushed, ?) "
        "WHERE batch_id = ?",
        (end_offset, first_at, first_at, last_at, last_at, samples, int(pushed), batch_id),
    )
    conn.execute("UPDATE batches SET finished_at = ? WHERE id = ?", (now, batch_id))


def revert_batches(conn: sqlite3.Connection, series: Any, batch_ids: list[int], *, machine: str, push: bool,
                   now: float) -> tuple[int, int]:
    """Revert tail batches (the caller's order, newest first) in this transaction, and tell a
    central telmon to forget them too.  Returns (batches reverted, samples the rollup could not
    take out because raw retention had pruned them: re-reading those lines would count them
    twice, so the caller must undo and keep them)."""
    pruned = 0
    for b in batch_ids:
        kind = conn.execute("SELECT kind FROM batches WHERE id = ?", (b,)).fetchone()[0]
        if kind == "series":
            pruned += seriesio.revert_in(series, conn, b, now=now).samples_pruned
        else:
            conn.execute("UPDATE batches SET reverted_at = ? WHERE id = ?", (now, b))
    if push and batch_ids:
        from telmon.tail import push as pushmod

        pushmod.enqueue_forget(conn, machine, batch_ids, now=now)
    return len(batch_ids), pruned


def reject_lines(conn: sqlite3.Connection, row: FileRow, rows: list[tuple[str, int, int]], *, batch_id: int | None,
                 now: float) -> None:
    """Keep unparseable lines for `telmon rejected`: (reason with an excerpt, line, byte offset)."""
    conn.executemany(
        "INSERT INTO rejections(path, feed, origin, received_at, format, reason, line, byte_offset, batch_id) "
        "VALUES (?,?,'tail',?,'metpx',?,?,?,?)",
        [(row.path, row.machine, now, reason, line, offset, batch_id) for reason, line, offset in rows],
    )
