"""Tables of the ``series`` component, as versioned migration steps (see store/migrate.py).

Append a step to change the schema; never edit a released one.

Raw samples live in *chunks*: one row per series per write per UTC day, append-only (rowid
order is write order, which is also the duplicate rule: the newest chunk's sample of a
(series, time) wins).  A clustered (series, ts) key under interleaved writes cut ingest
several-fold in the design measurements, so chunks are a rowid table with small indexes.

``series_generation`` is bumped by every transaction that changes series rows, so a
SeriesStore can keep the rows it wrote in memory and know when another writer (process or
instance) changed them.

Every index here leads with time (day, block start), then the series: a write of a thousand
series then touches a few adjacent index pages instead of one page per series (a series-first
index made each commit rewrite most of the index: ~2-4 MB of WAL per write, measured).  Reads
of a series probe the days or block starts of their span, which are known.

Buckets live in *blocks* (the buckets of one series in ``block_buckets(step)`` consecutive
steps).  A block is stored as one or more *part* rows, each a log of partial buckets column
by column (see codec.py): a write inserts a new part row and never rewrites old bytes
(updating growing rows in place cost 3-10x more than inserting, measured); reads merge the
parts.  ``series_dirty`` lists the blocks that got a part beyond their first since they were
last compacted into one row (a set: inserting into it is a lookup, counting into it cost three
times more, measured); every COMPACT_CHECK-th write compacts those of them that hold more than
COMPACT_AFTER parts, and ``prune`` compacts those that closed.
"""

from __future__ import annotations

# A block holding more parts than this is compacted by the next write that checks.
COMPACT_AFTER = 32
# Every this-many-th write (by batch id) checks the dirty blocks for crowding.
COMPACT_CHECK = 8

SERIES_STEPS: list[str] = [
    # 1: series, policy rules, raw chunks, bucket blocks
    """
    CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        labels TEXT NOT NULL DEFAULT '{}',
        interval_s REAL,
        policy TEXT NOT NULL,
        reshape_from TEXT,
        raw_from REAL,
        last_us INTEGER,
        created_at REAL NOT NULL
    );
    CREATE TABLE series_generation (generation INTEGER NOT NULL);
    INSERT INTO series_generation VALUES (0);
    CREATE TABLE series_policy_rules (
        pattern TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        position INTEGER NOT NULL
    );
    CREATE TABLE series_chunks (
        id INTEGER PRIMARY KEY,
        series_id INTEGER NOT NULL,
        batch_id INTEGER NOT NULL,
        day INTEGER NOT NULL,
        ts_min INTEGER NOT NULL,
        ts_max INTEGER NOT NULL,
        n INTEGER NOT NULL,
        ts BLOB NOT NULL,
        vals BLOB NOT NULL
    );
    CREATE INDEX series_chunks_day ON series_chunks(day, series_id);
    CREATE INDEX series_chunks_batch ON series_chunks(batch_id);
    CREATE TABLE series_parts (
        id INTEGER PRIMARY KEY,
        series_id INTEGER NOT NULL,
        step INTEGER NOT NULL,
        start INTEGER NOT NULL,
        parts INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    CREATE INDEX series_parts_block ON series_parts(step, start, series_id);
    CREATE TABLE series_dirty (
        step INTEGER NOT NULL,
        start INTEGER NOT NULL,
        series_id INTEGER NOT NULL,
        PRIMARY KEY (step, start, series_id)
    ) WITHOUT ROWID;
    """,
]
