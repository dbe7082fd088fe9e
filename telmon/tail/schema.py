"""Tables of the ``tail`` component, as versioned migration steps (see store/migrate.py).

Append a step to change the schema; never edit a released one.

* ``tail_files``: one row per log file ever followed -- its identity (device, inode, and a
  fingerprint of its first bytes), the checkpoint (offset, lines, the key carry) and counters.
  The checkpoint is updated in the same transaction as the statistics read up to it.
* ``tail_batches``: what each batch read (a batch is one file's samples of one collection
  hour): where it started, so that a rewind can revert it and read the bytes again.
* ``tail_notes``: what the tailer noticed and did (rotation, copytruncate, truncation, a
  rewritten head, lost bytes), for `telmon tail --status` and the API.
* ``tail_outbox``: statistics waiting to be pushed to a central telmon (the on-disk buffer);
  ``tail_meta`` holds this store's random epoch, sent with every push so that a central
  telmon notices a machine whose store (and outbox numbering) started over.
* ``tail_push_machines`` / ``tail_push_batches``: on the central telmon, the last message
  applied per machine and epoch (pushes are applied exactly once, in order) and which local
  batch holds each remote batch.
"""

from __future__ import annotations

from typing import Any

from telmon.store.migrate import migrate

TAIL_STEPS: list[str] = [
    # 1
    """
    CREATE TABLE tail_files (
        id INTEGER PRIMARY KEY,
        machine TEXT NOT NULL,
        direction TEXT NOT NULL,
        client TEXT NOT NULL,
        seq INTEGER NOT NULL,
        path TEXT NOT NULL,
        dev INTEGER NOT NULL,
        inode INTEGER NOT NULL,
        compressed INTEGER NOT NULL DEFAULT 0,
        fp TEXT NOT NULL,
        fp_len INTEGER NOT NULL,
        anchor BLOB NOT NULL DEFAULT x'',
        offset INTEGER NOT NULL DEFAULT 0,
        lines INTEGER NOT NULL DEFAULT 0,
        carry TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL DEFAULT 'active',
        generation INTEGER NOT NULL DEFAULT 0,
        size_seen INTEGER NOT NULL DEFAULT 0,
        mtime_ns INTEGER NOT NULL DEFAULT 0,
        changed_at REAL NOT NULL,
        first_at REAL,
        last_at REAL,
        transfers INTEGER NOT NULL DEFAULT 0,
        duplicates INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0,
        other INTEGER NOT NULL DEFAULT 0,
        bad INTEGER NOT NULL DEFAULT 0,
        batch_id INTEGER,
        batch_hour INTEGER,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX tail_files_stream ON tail_files(machine, direction, client, seq);
    CREATE INDEX tail_files_inode ON tail_files(machine, dev, inode);
    CREATE INDEX tail_files_state ON tail_files(machine, state);
    CREATE TABLE tail_batches (
        batch_id INTEGER PRIMARY KEY,
        file_id INTEGER NOT NULL,
        start_offset INTEGER NOT NULL,
        start_state TEXT NOT NULL,
        end_offset INTEGER NOT NULL,
        first_at REAL,
        last_at REAL,
        samples INTEGER NOT NULL DEFAULT 0,
        pushed INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX tail_batches_file ON tail_batches(file_id, start_offset);
    CREATE TABLE tail_notes (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        machine TEXT NOT NULL,
        file_id INTEGER,
        path TEXT,
        event TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX tail_notes_at ON tail_notes(at);
    CREATE TABLE tail_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        machine TEXT NOT NULL,
        created_at REAL NOT NULL,
        body BLOB NOT NULL
    );
    CREATE TABLE tail_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE tail_push_machines (
        machine TEXT PRIMARY KEY,
        epoch TEXT NOT NULL,
        last_seq INTEGER NOT NULL,
        last_at REAL NOT NULL,
        messages INTEGER NOT NULL DEFAULT 0,
        samples INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE tail_push_batches (
        machine TEXT NOT NULL,
        remote_batch INTEGER NOT NULL,
        batch_id INTEGER NOT NULL,
        PRIMARY KEY (machine, remote_batch)
    ) WITHOUT ROWID;
    """,
]


def ensure_schema(store: Any) -> None:
    """Create or upgrade the tail tables in an SQLiteStore (idempotent)."""
    # migrate() runs its own BEGIN IMMEDIATE: take the writer under the store's lock,
    # outside transaction(), as the series store does.
    with store._lock:
        migrate(store._writer, "tail", TAIL_STEPS)
