"""Putting collection right: rewind, backup and restore, and what the tailer knows.

* :func:`rewind` -- the old library's setTimeOfLastUpdates, done safely: for the chosen
  clients, every batch holding lines logged at or after ``since`` is reverted and the file's
  checkpoint goes back to where that batch started, in one transaction; the tailer then reads
  those bytes again (a running tailer notices the moved checkpoint and drops what it was
  about to commit).  A file no longer on disk cannot be read again: its batches are kept and
  listed, so a rewind never loses what it cannot recollect.
* :func:`backup` / :func:`restore` -- restoreRoundRobinDatabases, done safely: SQLite's online
  backup API copies a consistent snapshot while telmon keeps writing (WAL readers do not block
  the writer), and a restore first keeps a copy of the current store.  The checkpoints are in
  the same file as the statistics, so after a restore the tailer resumes exactly where the
  backup's statistics end: logs still on disk fill the gap, nothing is counted twice.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson

from telmon.errors import BadRequest, StoreError
from telmon.tail import files as lf
from telmon.tail import state
from telmon.tail.names import safe
from telmon.tail.schema import ensure_schema
from telmon.tail.state import ACTIVE, DONE, FileRow
from telmon.timeutil import iso


def _on_disk(row: FileRow) -> bool:
    """Is the file's content still where the row last saw it?"""
    try:
        st = os.stat(row.path)
    except OSError:
        return False
    if not row.compressed:
        return (st.st_dev, st.st_ino) == (row.dev, row.inode)
    try:
        head = lf.read_head(row.path, True)
    except (OSError, lf.NotReady):
        return False
    return len(head) >= row.fp_len and lf.fingerprint(head[:row.fp_len]) == row.fp


def rewind(store: Any, series: Any, *, machine: str, since: float, clients: list[str] | None = None,
           directions: list[str] | None = None, push: bool = False, now: float) -> dict[str, Any]:
    """Forget the chosen clients' statistics from ``since`` on and let the tailer collect
    them again from the logs on disk (see module doc)."""
    ensure_schema(store)
    machine = safe(machine)
    out: dict[str, Any] = {"machine": machine, "since": iso(since), "files": [], "kept": [], "batches_reverted": 0}
    with store.transaction() as conn:
        rows = state.load(conn, machine)
        rows = [r for r in rows if (not clients or r.client in clients) and (not directions or r.direction in directions)]
        for row in rows:
            # every batch counts for where to start again (one reverted by `telmon revert` is
            # collected again too); only those still in force are reverted
            batches = conn.execute(
                "SELECT t.batch_id, t.start_offset, t.start_state, t.last_at, b.kind, b.reverted_at IS NULL "
                "FROM tail_batches t JOIN batches b ON b.id = t.batch_id WHERE t.file_id = ? "
                "ORDER BY t.start_offset, t.batch_id", (row.id,)).fetchall()
            first = next((i for i, b in enumerate(batches) if b[3] is not None and b[3] >= since), None)
            if first is None:
                continue
            if row.state not in (ACTIVE, DONE) or not _on_disk(row):
                out["kept"].append({"path": row.path, "batches": len(batches) - first,
                                    "why": "file no longer on disk: its statistics are kept"})
                continue
            gen, off = row.generation, row.offset
            reverted = [b[0] for b in reversed(batches[first:]) if b[5]]
            conn.execute("SAVEPOINT tail_rewind")
            _, pruned = state.revert_batches(conn, series, reverted, machine=machine, push=push, now=now)
            if pruned:
                conn.execute("ROLLBACK TO tail_rewind")
                conn.execute("RELEASE tail_rewind")
                out["kept"].append({"path": row.path, "batches": len(reverted),
                                    "why": f"{pruned} sample(s) are older than raw retention: the rollup cannot take "
                                           "them out, so reading them again would count them twice"})
                continue
            conn.execute("RELEASE tail_rewind")
            state.restore_snapshot(row, orjson.loads(batches[first][2]))
            row.generation += 1
            row.state = ACTIVE
            row.batch_id = row.batch_hour = None
            state.save(conn, row, expect_generation=gen, expect_offset=off, now=now)
            state.note(conn, machine, "rewound", f"back to byte {row.offset} (line {row.lines}) to collect again "
                       f"from {iso(since)}; {len(reverted)} batch(es) reverted", now=now, row=row)
            out["batches_reverted"] += len(reverted)
            out["files"].append({"path": row.path, "direction": row.direction, "client": row.client,
                                 "from_offset": row.offset, "from_line": row.lines, "batches": reverted})
    return out


def status(store: Any, *, machine: str | None = None, notes: int = 20) -> dict[str, Any]:
    """The followed files with their checkpoints and counters, the latest notes, the outbox."""
    ensure_schema(store)
    with store._read() as conn:
        sql = ("SELECT machine, direction, client, path, state, offset, lines, size_seen, transfers, duplicates, "
               "errors, other, bad, first_at, last_at, updated_at FROM tail_files")
        args: list[Any] = []
        if machine:
            sql += " WHERE machine = ?"
            args.append(safe(machine))
        files = [{"machine": r[0], "direction": r[1], "client": r[2], "path": r[3], "state": r[4], "offset": r[5],
                  "lines": r[6], "size": r[7], "transfers": r[8], "duplicates": r[9], "errors": r[10], "other": r[11],
                  "bad": r[12], "first_line_at": iso(r[13]), "last_line_at": iso(r[14]), "updated_at": iso(r[15])}
                 for r in conn.execute(sql + " ORDER BY machine, direction, client, seq", args)]
        recent = [{"at": iso(r[0]), "machine": r[1], "path": r[2], "event": r[3], "detail": r[4]}
                  for r in conn.execute("SELECT at, machine, path, event, detail FROM tail_notes ORDER BY id DESC "
                                        "LIMIT ?", (notes,))]
        waiting = conn.execute("SELECT count(*), coalesce(sum(length(body)), 0) FROM tail_outbox").fetchone()
        machines = [{"machine": r[0], "last_seq": r[1], "last_push_at": iso(r[2]), "messages": r[3], "samples": r[4]}
                    for r in conn.execute("SELECT machine, last_seq, last_at, messages, samples FROM tail_push_machines "
                                          "ORDER BY machine")]
    return {"files": files, "notes": recent, "outbox": {"messages": waiting[0], "bytes": waiting[1]},
            "pushing_machines": machines}


# --- backup / restore -------------------------------------------------------------------------
def _check(path: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
            known = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'schema_versions'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a readable SQLite store: {exc}") from None
    if ok != "ok":
        raise StoreError(f"{path} failed its integrity check: {ok}")
    if not known:
        raise StoreError(f"{path} is not a telmon store (no schema_versions table)")


def backup(store_path: str | Path, dest: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
    """A consistent copy of the store while it may be written (SQLite online backup, in one
    step under a read snapshot, so continuous writes cannot restart it), checked before it
    takes its final name."""
    src_path, dest = Path(store_path), Path(dest)
    if not src_path.exists():
        raise StoreError(f"no store at {src_path}")
    if dest.exists() and not overwrite:
        raise BadRequest(f"{dest} exists (use --overwrite)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    tmp.unlink(missing_ok=True)
    started = time.monotonic()
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True, timeout=30.0)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst, pages=-1)
    finally:
        dst.close()
        src.close()
    _check(tmp)
    os.replace(tmp, dest)
    return {"backup": str(dest), "bytes": dest.stat().st_size, "seconds": round(time.monotonic() - started, 3)}


def restore(store_path: str | Path, src: str | Path, *, keep_current: bool = True, now: float) -> dict[str, Any]:
    """Replace the store's content with a backup's, through the backup API (page by page
    under the database lock, so no reader sees half of it).  The current content is kept
    beside the store first (``<store>.before-restore-<time>``)."""
    store_path, src = Path(store_path), Path(src)
    _check(src)
    kept = None
    if keep_current and store_path.exists():
        kept = store_path.with_name(f"{store_path.name}.before-restore-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}")
        backup(store_path, kept, overwrite=True)
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    target = sqlite3.connect(store_path, timeout=30.0)
    try:
        source.backup(target, pages=-1)
    finally:
        target.close()
        source.close()
    return {"restored_from": str(src), "store": str(store_path), "previous_kept_as": str(kept) if kept else None}

