"""Chunks and blocks on one SQLite connection, for many series per statement.

Callers hold the connection (the writer inside a transaction, or a reader); nothing here
commits.  Times of raw samples are int64 microseconds; bucket and block starts are int
epoch seconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from telmon.rollup import codec
from telmon.rollup.buckets import US, BucketArrays, concat_arrays, merge_rows
from telmon.rollup.errors import CorruptBlock
from telmon.rollup.schema import COMPACT_AFTER
from telmon.rollup.tiers import block_buckets

_MAX_PARAMS = 30000
_MAX_PROBES = 2048  # past this many keys, a range scan beats probing one by one
DAY = 86400
# Range keys pack (series id, start seconds) in one int64: ids below 2**26, |start| below 2**36.
_START_BIAS = 1 << 36
_SID_SHIFT = 37


def chunks_of(seq: Sequence[object], size: int) -> Iterator[Sequence[object]]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


@dataclass(frozen=True, slots=True)
class TierIO:
    """What block I/O needs to know of one tier for a set of series sharing its accuracy."""

    step: int
    alpha: float

    @property
    def span(self) -> int:
        return self.step * block_buckets(self.step)


# --- raw chunks -------------------------------------------------------------------------

@dataclass(slots=True)
class RawSamples:
    """Raw samples, one row each: series id, time (us), value, and the chunk that holds it."""

    sid: np.ndarray
    ts: np.ndarray
    value: np.ndarray
    chunk: np.ndarray

    @staticmethod
    def empty() -> RawSamples:
        i = np.zeros(0, np.int64)
        return RawSamples(i, i, np.zeros(0, np.float64), i)

    def take(self, index: np.ndarray) -> RawSamples:
        return RawSamples(self.sid[index], self.ts[index], self.value[index], self.chunk[index])

    def __len__(self) -> int:
        return len(self.sid)


def insert_chunks(conn: sqlite3.Connection, batch_id: int, sids: np.ndarray, ts_us: np.ndarray,
                  values: np.ndarray) -> int:
    """Append the samples (sorted by series then time) as one chunk per series and UTC day.
    Returns the id of the first chunk; the others follow consecutively."""
    first_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM series_chunks").fetchone()[0]
    day = np.floor_divide(ts_us, DAY * US)
    firsts = np.flatnonzero(np.r_[True, (sids[1:] != sids[:-1]) | (day[1:] != day[:-1])])
    lengths = np.diff(np.r_[firsts, len(sids)])
    ts_blobs, val_blobs = codec.encode_chunks(ts_us, values, lengths)
    lasts = firsts + lengths - 1
    rows = zip(sids[firsts].tolist(), repeat(batch_id), day[firsts].tolist(), ts_us[firsts].tolist(),
               ts_us[lasts].tolist(), lengths.tolist(), ts_blobs, val_blobs)
    conn.executemany(
        "INSERT INTO series_chunks(series_id, batch_id, day, ts_min, ts_max, n, ts, vals) VALUES (?,?,?,?,?,?,?,?)", rows
    )
    return int(first_id)


def decode_chunk_rows(rows: Sequence[tuple[int, int, bytes, bytes]]) -> RawSamples:
    """Rows of (chunk id, series id, ts blob, vals blob) -> their samples."""
    if not rows:
        return RawSamples.empty()
    try:
        ts, values, lengths = codec.decode_chunks([r[2] for r in rows], [r[3] for r in rows])
    except ValueError as exc:
        raise CorruptBlock("series_chunks", rows[0][0], f"{exc} (in one of {len(rows)} chunks read together)") from None
    chunk_ids = np.array([r[0] for r in rows], np.int64)
    sids = np.array([r[1] for r in rows], np.int64)
    return RawSamples(np.repeat(sids, lengths), ts, values, np.repeat(chunk_ids, lengths))


def _by_range(sids: Iterable[int], lo: Iterable[int], hi: Iterable[int]) -> dict[tuple[int, int], list[int]]:
    """Series grouped by identical [lo, hi) ranges (a series listed twice: its ranges' hull)."""
    ranges: dict[int, tuple[int, int]] = {}
    for sid, a, b in zip(sids, lo, hi):
        x, y = ranges.get(int(sid), (int(a), int(b)))
        ranges[int(sid)] = (min(x, int(a)), max(y, int(b)))
    groups: dict[tuple[int, int], list[int]] = {}
    for sid, rng in ranges.items():
        groups.setdefault(rng, []).append(sid)
    return groups


def _probes(first: int, hi: int, span: int) -> list[int] | None:
    """Keys first, first + span, ... below hi, or None when too many to probe one by one."""
    n = -(-(hi - first) // span)
    if n > _MAX_PROBES:
        return None
    return [first + i * span for i in range(max(n, 0))]


def _select(conn: sqlite3.Connection, columns: str, table: str, lead: str, lead_args: list[object],
            key: str, first: int, hi: int, span: int, sids: list[int]) -> list[tuple]:
    """Rows for series ``sids`` whose ``key`` is a multiple of ``span`` in [first, hi): probed
    key by key on the time-first index when few, else one range scan."""
    probes = _probes(first, hi, span)
    rows: list[tuple] = []
    if probes is not None and not probes:
        return rows
    per = max(1, (_MAX_PARAMS - len(lead_args) - (len(probes) if probes else 2)) // 1)
    for part in chunks_of(sids, min(per, 10000)):
        marks = ",".join("?" * len(part))
        if probes is not None:
            where = f"{lead} {key} IN ({','.join('?' * len(probes))}) AND series_id IN ({marks})"
            args = [*lead_args, *probes, *part]
        else:
            where = f"{lead} {key} >= ? AND {key} < ? AND series_id IN ({marks})"
            args = [*lead_args, first, hi, *part]
        rows += conn.execute(f"SELECT {columns} FROM {table} WHERE {where}", args).fetchall()
    return rows


def load_raw(conn: sqlite3.Connection, sids: Iterable[int], lo_us: Iterable[int], hi_us: Iterable[int]) -> RawSamples:
    """Every stored sample (superseded ones included) of each series within [lo, hi).
    A series listed twice is read over the union of its ranges' hull."""
    rows: list[tuple[int, int, bytes, bytes]] = []
    groups = _by_range(sids, lo_us, hi_us)
    for (lo, hi), members in groups.items():
        first_day, last_day = lo // (DAY * US), (hi - 1) // (DAY * US)
        rows += _select(conn, "id, series_id, ts, vals", "series_chunks", "", [], "day",
                        first_day, last_day + 1, 1, members)
    raw = decode_chunk_rows(rows)
    if len(raw) == 0:
        return raw
    # whole days were read; cut to each series' range exactly
    keys = np.array(sorted(s for m in groups.values() for s in m), dtype=np.int64)
    bound_of = {s: rng for rng, m in groups.items() for s in m}
    bounds = np.array([bound_of[k] for k in keys.tolist()], dtype=np.int64)
    at = np.searchsorted(keys, raw.sid)
    keep = (raw.ts >= bounds[at, 0]) & (raw.ts < bounds[at, 1])
    return raw.take(np.flatnonzero(keep))


def effective(raw: RawSamples) -> RawSamples:
    """One sample per (series, time): the one from the newest chunk.  Sorted by (series, time)."""
    if len(raw) == 0:
        return raw
    order = np.lexsort((raw.chunk, raw.ts, raw.sid))
    r = raw.take(order)
    last = np.r_[(r.sid[1:] != r.sid[:-1]) | (r.ts[1:] != r.ts[:-1]), True]
    return r.take(np.flatnonzero(last))


# --- ranges of buckets ------------------------------------------------------------------

def range_keys(sid: np.ndarray, start: np.ndarray) -> np.ndarray:
    s = np.clip(np.asarray(start, dtype=np.int64), -_START_BIAS + 1, _START_BIAS - 1)
    return (np.asarray(sid, dtype=np.int64) << _SID_SHIFT) + s + _START_BIAS


def in_ranges(sid: np.ndarray, start: np.ndarray, r_sid: np.ndarray, r_lo: np.ndarray, r_hi: np.ndarray) -> np.ndarray:
    """Whether each (sid, start) lies in some range [lo, hi) of the same series."""
    if len(r_sid) == 0 or len(sid) == 0:
        return np.zeros(len(sid), dtype=bool)
    lo = range_keys(r_sid, r_lo)
    hi = range_keys(r_sid, r_hi)
    order = np.argsort(lo)
    lo, hi = lo[order], np.maximum.accumulate(hi[order])
    k = range_keys(sid, start)
    i = np.searchsorted(lo, k, side="right") - 1
    return (i >= 0) & (k < hi[np.maximum(i, 0)])


# --- blocks ---------------------------------------------------------------------------

_INSERT_PART = "INSERT INTO series_parts(series_id, step, start, parts, data) VALUES (?,?,?,?,?)"


def append_partials(conn: sqlite3.Connection, tier: TierIO, partials: BucketArrays,
                    last_us: Callable[[np.ndarray], np.ndarray] | None = None) -> int:
    """Add partial buckets to their blocks as new part rows, reading nothing.  ``last_us``
    gives each series' newest sample time before this write: blocks starting after it
    cannot hold parts yet, so they are not counted as needing compaction.
    Returns how many blocks got a part."""
    blocks = codec.encode_blocks(partials, tier.step, tier.span)
    conn.executemany(_INSERT_PART, blocks.rows(tier.step))
    sid = np.array(blocks.series_id, np.int64)
    start = np.array(blocks.start, np.int64)
    if last_us is not None and len(blocks):
        old = start * US <= last_us(sid)
        sid, start = sid[old], start[old]
    conn.executemany(
        "INSERT INTO series_dirty(step, start, series_id) VALUES (?,?,?) ON CONFLICT DO NOTHING",
        zip(repeat(tier.step), start.tolist(), sid.tolist()),
    )
    return len(blocks)


_PART_COLUMNS = "id, series_id, start, data"


def load_blocks(conn: sqlite3.Connection, tier: TierIO, sids: Sequence[int], lo: Sequence[int] | np.ndarray,
                hi: Sequence[int] | np.ndarray) -> list[tuple]:
    """Part rows of the blocks holding buckets of series ``sids[i]`` starting in [lo[i], hi[i])."""
    rows: list[tuple] = []
    for (a, b), members in _by_range(sids, lo, hi).items():
        first_block = (a // tier.span) * tier.span
        rows += _select(conn, _PART_COLUMNS, "series_parts", "step = ? AND", [tier.step], "start",
                        first_block, b, tier.span, members)
    return rows


def load_block_keys(conn: sqlite3.Connection, tier: TierIO, sids: np.ndarray, starts: np.ndarray) -> list[tuple]:
    """Part rows of the given (series, block start) blocks."""
    keys = sorted(set(zip(np.asarray(starts).tolist(), np.asarray(sids).tolist())))
    rows: list[tuple] = []
    for part in chunks_of(keys, _MAX_PARAMS // 2 - 1):
        values = ",".join("(?,?)" for _ in part)
        flat = [x for pair in part for x in pair]
        rows += conn.execute(f"SELECT {_PART_COLUMNS} FROM series_parts WHERE step = ? AND (start, series_id) IN "
                             f"(VALUES {values})", [tier.step, *flat]).fetchall()
    return rows


def decode(rows: Sequence[tuple], tier: TierIO) -> BucketArrays:
    """Part rows (as selected here) -> merged buckets, group = series id."""
    try:
        return codec.decode_blocks([r[1:] for r in rows], tier.step, tier.alpha)
    except ValueError as exc:
        where = rows[0][0] if rows else 0
        raise CorruptBlock("series_parts", where, f"{exc} (in one of {len(rows)} parts read together)") from None


def delete_blocks(conn: sqlite3.Connection, step: int, keys: Iterable[tuple[int, int]]) -> None:
    """Delete blocks given as (series id, block start)."""
    args = [(step, t, s) for s, t in keys]
    conn.executemany("DELETE FROM series_parts WHERE step = ? AND start = ? AND series_id = ?", args)
    conn.executemany("DELETE FROM series_dirty WHERE step = ? AND start = ? AND series_id = ?", args)


def delete_range(conn: sqlite3.Connection, step: int, span: int, sids: Sequence[int], lo: int, hi: int) -> None:
    """Delete the blocks of these series that start in [lo, hi) (lo, hi multiples of span)."""
    for table in ("series_parts", "series_dirty"):
        keys = _select(conn, "DISTINCT start, series_id", table, "step = ? AND", [step], "start", lo, hi, span, list(sids))
        conn.executemany(f"DELETE FROM {table} WHERE step = ? AND start = ? AND series_id = ?",
                         [(step, t, s) for t, s in keys])


def write_blocks(conn: sqlite3.Connection, tier: TierIO, buckets: BucketArrays, sids: np.ndarray,
                 starts: np.ndarray) -> None:
    """Make blocks (sids[i], starts[i]) hold exactly the given buckets, one compacted part
    row each; a listed block left with no bucket is deleted."""
    delete_blocks(conn, tier.step, set(zip(np.asarray(sids).tolist(), np.asarray(starts).tolist())))
    conn.executemany(_INSERT_PART, codec.encode_blocks(buckets, tier.step, tier.span, pack=True).rows(tier.step))


def replace_buckets(conn: sqlite3.Connection, tier: TierIO, r_sid: np.ndarray, r_lo: np.ndarray, r_hi: np.ndarray,
                    new: BucketArrays) -> None:
    """Drop every stored bucket of series r_sid[i] starting in [r_lo[i], r_hi[i]) and store
    ``new`` (buckets of those ranges) in their place."""
    r_sid = np.asarray(r_sid, np.int64)
    r_lo = np.asarray(r_lo, np.int64)
    r_hi = np.asarray(r_hi, np.int64)
    span = tier.span
    # whole blocks inside a range are deleted unread; blocks cut by a range edge are rewritten
    same: dict[tuple[int, int], list[int]] = {}  # ranges kept apart: a hull would take too much
    for sid, lo, hi in zip(r_sid.tolist(), r_lo.tolist(), r_hi.tolist()):
        same.setdefault((lo, hi), []).append(sid)
    for (lo, hi), members in same.items():
        inner_lo = -(-lo // span) * span
        inner_hi = (hi // span) * span
        if inner_hi > inner_lo:
            delete_range(conn, tier.step, span, members, inner_lo, inner_hi)
    edge_sid = np.r_[r_sid, r_sid]
    edge_start = np.r_[np.floor_divide(r_lo, span), np.floor_divide(r_hi - 1, span)] * span
    new_block = np.floor_divide(new.start, span) * span
    sids = np.r_[edge_sid, new.group]
    starts = np.r_[edge_start, new_block]
    stored = decode(load_block_keys(conn, tier, sids, starts), tier)
    kept = stored.take(~in_ranges(stored.group, stored.start, r_sid, r_lo, r_hi))
    merged = merge_rows(concat_arrays([kept, new], alpha=tier.alpha))
    write_blocks(conn, tier, merged, sids, starts)


def compact_dirty(conn: sqlite3.Connection, alpha_of: Callable[[int, int], float], *,
                  closed_by: float | None = None) -> int:
    """Merge into one row the parts of each dirty block that holds more than COMPACT_AFTER
    parts -- and, given ``closed_by`` (now), of each dirty block that ends by then (a block
    still open will get more parts).  Returns how many blocks."""
    keys = {tuple(k) for k in conn.execute(
        "SELECT d.series_id, d.step, d.start FROM series_dirty d JOIN series_parts p "
        "ON p.step = d.step AND p.start = d.start AND p.series_id = d.series_id "
        f"GROUP BY d.step, d.start, d.series_id HAVING count(*) > {COMPACT_AFTER}")}
    if closed_by is not None:
        keys |= {(sid, step, start) for sid, step, start in conn.execute(
                     "SELECT series_id, step, start FROM series_dirty")
                 if start + step * block_buckets(step) <= closed_by}
    groups: dict[tuple[int, float], list[tuple[int, int]]] = {}
    for sid, step, start in sorted(keys):
        groups.setdefault((int(step), alpha_of(int(sid), int(step))), []).append((int(sid), int(start)))
    for (step, alpha), part in groups.items():
        tier = TierIO(step, alpha)
        for piece in chunks_of(part, 4096):
            sids = np.array([k[0] for k in piece], np.int64)
            starts = np.array([k[1] for k in piece], np.int64)
            write_blocks(conn, tier, decode(load_block_keys(conn, tier, sids, starts), tier), sids, starts)
    return len(keys)
