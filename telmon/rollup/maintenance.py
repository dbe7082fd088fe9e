"""Revert, prune, rebuild and reshape: the operations that rewrite stored buckets.

Each runs inside the caller's write transaction (SeriesStore opens it).

What a bucket can be recomputed from: raw samples, while raw retention still holds every
sample of the bucket (``bucket start >= series.raw_from``).  Past that, a correction is
applied as a delta: count, sum and sketch stay exact, min/max/first/last only widen, so a
revert there leaves them as bounds and flags the bucket ``inexact``.  Once a batch's raw
samples are pruned its share of the tiers can no longer be taken out; revert says how many.
"""

from __future__ import annotations

import math
import sqlite3
from typing import TYPE_CHECKING

import numpy as np

from telmon.rollup import blockio
from telmon.rollup.blockio import TierIO
from telmon.rollup.buckets import (
    US, aggregate_arrays, bucket_starts, concat_arrays, convert_arrays, rebucket, removal_arrays,
)
from telmon.rollup.errors import BadSeriesQuery, UnknownBatch, UnknownSeries
from telmon.rollup.results import PruneResult, RebuildResult, ReshapeResult, RevertResult
from telmon.rollup.series_rows import (
    BySeries, SeriesRow, alpha_lookup, coalesce_runs, in_tier, match_pairs, rows_by_id, tier_groups,
)
from telmon.rollup.tiers import Policy
from telmon.timeutil import iso

if TYPE_CHECKING:
    from telmon.rollup.store import SeriesStore

FAR = 1 << 40  # seconds: an open end of a bucket range
_SERIES_PER_PASS = 256  # rebuild and reshape read raw samples for this many series at a time


def recompute(conn: sqlite3.Connection, tier: TierIO, r_sid: np.ndarray, r_lo: np.ndarray, r_hi: np.ndarray) -> int:
    """Rebuild the buckets of series r_sid[i] starting in [r_lo[i], r_hi[i]) from raw samples.
    Returns how many buckets hold samples afterwards."""
    raw = blockio.effective(blockio.load_raw(conn, r_sid, r_lo * US, r_hi * US))
    fresh = aggregate_arrays(raw.sid, raw.ts, raw.value, tier.step, tier.alpha)
    fresh = fresh.take(blockio.in_ranges(fresh.group, fresh.start, r_sid, r_lo, r_hi))
    blockio.replace_buckets(conn, tier, r_sid, r_lo, r_hi, fresh)
    return len(fresh)


# --- revert -----------------------------------------------------------------------------

def revert(ss: SeriesStore, conn: sqlite3.Connection, batch_id: int, now: float) -> RevertResult:
    row = conn.execute("SELECT kind, records, reverted_at FROM batches WHERE id = ?", (batch_id,)).fetchone()
    if row is None or row[0] != "series":
        raise UnknownBatch(batch_id)
    if row[2] is not None:
        raise BadSeriesQuery(f"series batch {batch_id} was already reverted at {iso(row[2])}", field="batch")
    chunk_rows = conn.execute("SELECT id, series_id, ts, vals FROM series_chunks WHERE batch_id = ?", (batch_id,)).fetchall()
    removed = blockio.decode_chunk_rows(chunk_rows)
    result = RevertResult(batch_id, len(removed), max(int(row[1]) - len(removed), 0), 0, 0)
    if len(removed):
        batch_chunks = np.array([r[0] for r in chunk_rows], np.int64)
        sids = np.unique(removed.sid)
        lo = np.array([removed.ts[removed.sid == s].min() for s in sids.tolist()])
        hi = np.array([removed.ts[removed.sid == s].max() + 1 for s in sids.tolist()])
        raw = blockio.load_raw(conn, sids, lo, hi)
        mine = np.isin(raw.chunk, batch_chunks)
        before = blockio.effective(raw)
        after = blockio.effective(raw.take(np.flatnonzero(~mine)))
        # samples of this batch that were in force, and the older ones they were hiding
        was = before.take(np.flatnonzero(np.isin(before.chunk, batch_chunks)))
        _, ib = match_pairs(was.sid, was.ts, after.sid, after.ts)
        back = after.take(np.sort(ib))
        conn.execute("DELETE FROM series_chunks WHERE batch_id = ?", (batch_id,))
        rows = rows_by_id(conn, sids.tolist())
        for tier, members, cutoffs in tier_groups(list(rows.values()), now, pending=True):
            cutoff = BySeries(members, cutoffs)
            rec, adj = _correct(conn, tier, rows, in_tier(was, tier.step, cutoff), in_tier(back, tier.step, cutoff))
            result.buckets_recomputed += rec
            result.buckets_adjusted += adj
        blockio.compact_dirty(conn, alpha_lookup(conn, rows))
    conn.execute("UPDATE batches SET reverted_at = ? WHERE id = ?", (now, batch_id))
    return result


def _correct(conn: sqlite3.Connection, tier: TierIO, rows: dict[int, SeriesRow], gone: blockio.RawSamples,
             back: blockio.RawSamples) -> tuple[int, int]:
    """Take ``gone`` samples out of the tier and put ``back`` ones (that they were hiding) in.
    Returns (buckets recomputed from raw, buckets adjusted by deltas)."""
    if len(gone) == 0:
        return 0, 0
    step = tier.step
    g_start = bucket_starts(gone.ts, step)
    raw_from = np.array([rows[s].raw_from_us for s in gone.sid.tolist()], dtype=np.int64)
    covered = g_start * US >= raw_from
    r_sid, r_lo, r_hi = coalesce_runs(gone.sid[covered], g_start[covered], step)
    recomputed = recompute(conn, tier, r_sid, r_lo, r_hi) if len(r_sid) else 0
    far = np.flatnonzero(~covered)
    if len(far) == 0:
        return recomputed, 0
    b_far = ~blockio.in_ranges(back.sid, bucket_starts(back.ts, step), r_sid, r_lo, r_hi)
    b = back.take(np.flatnonzero(b_far))
    parts = concat_arrays([
        removal_arrays(gone.sid[far], gone.ts[far], gone.value[far], step, tier.alpha),
        aggregate_arrays(b.sid, b.ts, b.value, step, tier.alpha),
    ], alpha=tier.alpha)
    blockio.append_partials(conn, tier, parts)
    return recomputed, len(np.unique(np.c_[gone.sid[far], g_start[far]], axis=0))


# --- prune ------------------------------------------------------------------------------

def prune(ss: SeriesStore, conn: sqlite3.Connection, now: float) -> PruneResult:
    """Drop raw samples and buckets that retention no longer keeps (exactly: chunks and
    blocks cut by a cutoff are trimmed, not kept whole), and compact blocks that have closed."""
    result = PruneResult()
    rows = [SeriesRow.from_db(r) for r in conn.execute("SELECT id, name, policy, reshape_from, raw_from, last_us, "
                                                       "interval_s, labels FROM series")]
    by_raw: dict[float, list[int]] = {}
    by_tier: dict[tuple[int, float, float], list[int]] = {}
    for row in rows:
        by_raw.setdefault(row.policy.raw_retention, []).append(row.id)
        steps = {t.step for t in row.policy.tiers}
        # tiers of an earlier policy awaiting reshape are pruned by their own retention
        old = [t for t in row.reshape_from.tiers if t.step not in steps] if row.reshape_from else []
        for t in [*row.policy.tiers, *old]:
            by_tier.setdefault((t.step, t.retention, t.alpha), []).append(row.id)
    for retention, sids in by_raw.items():
        _prune_raw(conn, sids, now - retention, result)
    for (step, retention, alpha), sids in by_tier.items():
        _prune_tier(conn, TierIO(step, alpha), sids, now - retention, result)
    result.blocks_compacted = blockio.compact_dirty(conn, alpha_lookup(conn, {r.id: r for r in rows}), closed_by=now)
    return result


def _prune_raw(conn: sqlite3.Connection, sids: list[int], cutoff: float, result: PruneResult) -> None:
    cutoff_us = math.ceil(cutoff * US)
    cutoff_day = cutoff_us // (blockio.DAY * US)  # chunks never cross a day: older days go whole
    for part in blockio.chunks_of(sids, 30000):
        marks = ",".join("?" * len(part))
        result.chunks_deleted += conn.execute(
            f"DELETE FROM series_chunks WHERE day < ? AND series_id IN ({marks})", [cutoff_day, *part]).rowcount
        cut = conn.execute(
            f"SELECT id, series_id, ts, vals FROM series_chunks WHERE day = ? AND series_id IN ({marks}) "
            "AND ts_min < ?", [cutoff_day, *part, cutoff_us]).fetchall()
        for chunk_id, sid, ts_blob, val_blob in cut:
            raw = blockio.decode_chunk_rows([(chunk_id, sid, ts_blob, val_blob)])
            keep = raw.ts >= cutoff_us
            if not keep.any():
                conn.execute("DELETE FROM series_chunks WHERE id = ?", (chunk_id,))
                result.chunks_deleted += 1
                continue
            ts_b, val_b = blockio.codec.encode_chunks(raw.ts[keep], raw.value[keep], np.array([int(keep.sum())]))
            conn.execute("UPDATE series_chunks SET ts_min = ?, n = ?, ts = ?, vals = ? WHERE id = ?",
                         (int(raw.ts[keep].min()), int(keep.sum()), ts_b[0], val_b[0], chunk_id))
            result.chunks_trimmed += 1
        # raw samples are now complete only from the cutoff on
        conn.execute(f"UPDATE series SET raw_from = max(coalesce(raw_from, ?), ?) WHERE id IN ({marks})",
                     [cutoff, cutoff, *part])


def _prune_tier(conn: sqlite3.Connection, tier: TierIO, sids: list[int], cutoff: float, result: PruneResult) -> None:
    keep_from = math.floor(cutoff / tier.step) * tier.step  # first bucket that ends after the cutoff
    span = tier.span
    for part in blockio.chunks_of(sids, 30000):
        marks = ",".join("?" * len(part))
        whole = f"step = ? AND start <= ? AND series_id IN ({marks})"
        args = [tier.step, keep_from - span, *part]
        result.blocks_deleted += conn.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT start, series_id FROM series_parts WHERE {whole})", args).fetchone()[0]
        conn.execute(f"DELETE FROM series_parts WHERE {whole}", args)
        conn.execute(f"DELETE FROM series_dirty WHERE {whole}", args)
        edge = (keep_from // span) * span
        if edge == keep_from:
            continue  # the cutoff falls on a block edge: no block is cut
        cut = [r[0] for r in conn.execute(
            f"SELECT DISTINCT series_id FROM series_parts WHERE step = ? AND start = ? AND series_id IN ({marks})",
            [tier.step, edge, *part])]
        if cut:
            sids_cut = np.array(cut, np.int64)
            starts_cut = np.full(len(cut), edge, np.int64)
            stored = blockio.decode(blockio.load_block_keys(conn, tier, sids_cut, starts_cut), tier)
            blockio.write_blocks(conn, tier, stored.take(stored.start >= keep_from), sids_cut, starts_cut)
            result.blocks_trimmed += len(cut)


# --- rebuild ----------------------------------------------------------------------------

def rebuild(ss: SeriesStore, conn: sqlite3.Connection, pattern: str, since: float | None, now: float) -> RebuildResult:
    rows = ss._match(conn, pattern)
    if not rows:
        raise UnknownSeries(pattern)
    result = RebuildResult(series=len(rows))
    for i in range(0, len(rows), _SERIES_PER_PASS):
        part = rows[i:i + _SERIES_PER_PASS]
        for tier, members, cutoffs in tier_groups(part, now):
            by_id = {r.id: r for r in part}
            lo = []
            for sid, cutoff in zip(members.tolist(), cutoffs.tolist()):
                raw_from = by_id[sid].raw_from
                edges = [math.floor(cutoff / tier.step) * tier.step]
                if since is not None:
                    edges.append(math.floor(since / tier.step) * tier.step)
                if raw_from is not None:
                    edges.append(math.ceil(raw_from / tier.step) * tier.step)
                    if since is None or since < raw_from:
                        result.skipped_before = max(result.skipped_before or raw_from, raw_from)
                lo.append(max(edges))
            lo_a = np.array(lo, np.int64)
            hi_a = np.full(len(lo_a), FAR, np.int64)
            result.buckets += recompute(conn, tier, members, lo_a, hi_a)
    blockio.compact_dirty(conn, alpha_lookup(conn, {r.id: r for r in rows}))
    return result


# --- reshape ----------------------------------------------------------------------------

def reshape(ss: SeriesStore, conn: sqlite3.Connection, pattern: str, now: float) -> ReshapeResult:
    """Bring stored tiers in line with each series' policy: build missing steps (from raw
    samples where they reach, else by merging an old tier whose step divides the new one),
    re-bin sketches whose accuracy changed, drop steps no longer in the policy."""
    rows = ss._match(conn, pattern)
    # rules may have changed with no write since: apply them first
    names = [r.name for r in rows]
    ss._ensure_series(conn, names, now)
    result = ReshapeResult()
    for row in ss._rows_by_name(conn, names, fresh=True).values():
        stored_steps = _stored_steps(conn, row)
        wanted = {t.step for t in row.policy.tiers}
        if row.reshape_from is None and stored_steps <= wanted:
            continue
        result.series += 1
        old = row.reshape_from or row.policy
        for tier in row.policy.tiers:
            old_tier = old.tier(tier.step)
            old_alpha = old_tier.alpha if old_tier else tier.alpha
            if tier.step in stored_steps:
                if old_alpha != tier.alpha:
                    _convert_tier(conn, row.id, tier.step, old_alpha, tier.alpha)
                    result.tiers_converted += 1
                continue
            result.buckets_lost += _build_tier(conn, row, tier.step, tier.alpha, tier.cutoff(now), old, stored_steps)
            result.tiers_built += 1
        for step in sorted(stored_steps - wanted):
            blockio.delete_range(conn, step, TierIO(step, 0.01).span, [row.id], -FAR, FAR)
            result.tiers_dropped += 1
        conn.execute("UPDATE series SET reshape_from = NULL WHERE id = ?", (row.id,))
    return result


def _stored_steps(conn: sqlite3.Connection, row: SeriesRow) -> set[int]:
    """Steps this series has blocks in, among those of its policies (old and new).  A scan
    of each step's index: reshape is rare."""
    steps = {t.step for p in (row.policy, row.reshape_from) if p for t in p.tiers}
    return {step for step in steps if conn.execute(
        "SELECT 1 FROM series_parts WHERE step = ? AND series_id = ? LIMIT 1", (step, row.id)).fetchone()}


def _convert_tier(conn: sqlite3.Connection, sid: int, step: int, old_alpha: float, new_alpha: float) -> None:
    old = TierIO(step, old_alpha)
    rows = blockio.load_blocks(conn, old, [sid], [-FAR], [FAR])
    buckets = convert_arrays(blockio.decode(rows, old), new_alpha)
    blockio.write_blocks(conn, TierIO(step, new_alpha), buckets, np.array([r[1] for r in rows], np.int64),
                         np.array([r[2] for r in rows], np.int64))


def _build_tier(conn: sqlite3.Connection, row: SeriesRow, step: int, alpha: float, cutoff: float, old: Policy,
                stored_steps: set[int]) -> int:
    """Fill a new step of one series.  Returns old buckets that could not be carried over."""
    tier = TierIO(step, alpha)
    lo = math.floor(cutoff / step) * step
    raw_lo = lo if row.raw_from is None else max(lo, math.ceil(row.raw_from / step) * step)
    parts = []
    raw = blockio.effective(blockio.load_raw(conn, [row.id], [raw_lo * US], [FAR * US]))
    parts.append(aggregate_arrays(raw.sid, raw.ts, raw.value, step, alpha))
    lost = 0
    if raw_lo > lo:
        sources = sorted(s for s in stored_steps if step % s == 0)
        finest = min(stored_steps) if stored_steps else None
        if sources:
            src_step = sources[-1]  # the coarsest old step that divides: fewest buckets to merge
            src_tier = old.tier(src_step)
            src = TierIO(src_step, src_tier.alpha if src_tier else alpha)
            got = blockio.decode(blockio.load_blocks(conn, src, [row.id], [lo], [raw_lo]), src)
            got = got.take((got.start >= lo) & (got.start < raw_lo))
            parts.append(convert_arrays(rebucket(got, step), alpha))
        elif finest is not None:
            f_tier = old.tier(finest)
            src = TierIO(finest, f_tier.alpha if f_tier else alpha)
            got = blockio.decode(blockio.load_blocks(conn, src, [row.id], [lo], [raw_lo]), src)
            lost = int(((got.start >= lo) & (got.start < raw_lo)).sum())
    blockio.replace_buckets(conn, tier, np.array([row.id]), np.array([lo]), np.array([FAR]),
                            concat_arrays(parts, alpha=alpha))
    return lost
