"""SeriesStore: numeric series on the SQLite store -- raw samples, tiers of buckets, sketches.

Writes (one transaction each, batched and vectorised):
  1. judge every sample (NaN, infinity, non-numeric, outside retention, far future -> rejected
     with a reason, counted in the result and the core ``rejections`` table, origin 'series');
  2. append one raw chunk per series, tagged with the write's batch;
  3. for each tier, append the write's partial buckets to their blocks -- exact for any
     arrival order, because every bucket field merges exactly;
  4. where a sample supersedes an earlier one at the same (series, time), fix the bucket:
     recomputed from raw samples when raw retention still covers the whole bucket, else the
     earlier value is subtracted (count, sum and sketch exact; min/max/first/last become
     bounds, flagged ``inexact``).

Duplicate rule: the last write of a (series, time) wins (times are compared to the
microsecond).  The superseded sample stays in raw storage, shadowed, so reverting the later
batch brings it back.  Beyond raw retention the earlier value is no longer known: a later
duplicate then counts as one more sample.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import orjson

from telmon.rollup import blockio, intake, maintenance, reads
from telmon.rollup.blockio import RawSamples, TierIO
from telmon.rollup.buckets import (
    DEFAULT_STATS, US, BucketArrays, aggregate_arrays, bucket_starts, concat_arrays, removal_arrays, to_us,
)
from telmon.rollup.errors import BadSeriesQuery, UnknownSeries
from telmon.rollup.results import (
    PruneResult, RebuildResult, Rejection, ReshapeResult, RevertResult, SeriesAnswer, WriteResult,
)
from telmon.rollup.schema import COMPACT_CHECK, SERIES_STEPS
from telmon.rollup.series_rows import (
    NO_RAW_FROM, SERIES_COLUMNS, BySeries, SeriesRow, alpha_lookup, coalesce_runs, in_tier, match_pairs,
    tier_groups,
)
from telmon.rollup.tiers import Policy, check_pattern, parse_policy, resolve
from telmon.store.migrate import migrate
from telmon.store.sqlite import SQLiteStore

DEFAULT_FUTURE_TOLERANCE = 900.0
_SERIES_COLUMNS = SERIES_COLUMNS
_MAX_PARAMS = 30000

SampleInput = Iterable[tuple[str, Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]]


class SeriesStore:
    """Series on an SQLiteStore (same file, its own ``series`` migration component)."""

    def __init__(self, store: SQLiteStore, *, future_tolerance: float = DEFAULT_FUTURE_TOLERANCE) -> None:
        self.store = store
        self.future_tolerance = future_tolerance
        # migrate() runs its own BEGIN IMMEDIATE on the writer, so it takes the writer
        # connection under the store's lock rather than inside transaction().
        with store._lock:
            migrate(store._writer, "series", SERIES_STEPS)
        self._resolved: tuple[tuple[tuple[str, str], ...], dict[str, str]] = ((), {})
        # Series rows this instance read or wrote, valid while the generation is ours: a
        # write of a thousand series then skips a thousand-name lookup.
        self._rows: dict[str, SeriesRow] = {}
        self._generation: int | None = None

    @contextlib.contextmanager
    def _transaction(self, *, keeps_rows: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction that bumps the series generation.  ``keeps_rows``: the caller
        updates the cached rows it changes; otherwise the cache is dropped afterwards."""
        try:
            with self.store.transaction() as conn:
                generation = conn.execute("SELECT generation FROM series_generation").fetchone()[0]
                if generation != self._generation:
                    self._rows.clear()  # someone else changed series rows
                yield conn
                conn.execute("UPDATE series_generation SET generation = generation + 1")
                self._generation = generation + 1
            if not keeps_rows or len(self._rows) > 500_000:
                self._rows.clear()
        except BaseException:
            self._rows.clear()
            self._generation = None
            raise

    # --- policies ---------------------------------------------------------------------
    def set_policy(self, pattern: str, spec: str, *, position: int | None = None) -> Policy:
        """Series whose name matches the glob ``pattern`` get this policy (first matching rule
        wins, rules ordered by position; default: after the existing ones).  New data follows
        it at once; `reshape()` converts the tiers already stored."""
        pattern = check_pattern(pattern)
        policy = parse_policy(spec)
        with self.store.transaction() as conn:
            if position is None:
                row = conn.execute("SELECT position FROM series_policy_rules WHERE pattern = ?", (pattern,)).fetchone()
                position = row[0] if row else conn.execute(
                    "SELECT coalesce(max(position), 0) + 1 FROM series_policy_rules").fetchone()[0]
            conn.execute(
                "INSERT INTO series_policy_rules(pattern, spec, position) VALUES (?,?,?) "
                "ON CONFLICT(pattern) DO UPDATE SET spec = excluded.spec, position = excluded.position",
                (pattern, policy.spec, position),
            )
        return policy

    def remove_policy(self, pattern: str) -> bool:
        with self.store.transaction() as conn:
            return conn.execute("DELETE FROM series_policy_rules WHERE pattern = ?", (pattern,)).rowcount > 0

    def policies(self) -> list[tuple[str, str]]:
        """(pattern, policy spec) rules in the order they are tried; DEFAULT applies after them."""
        with self.store._read() as conn:
            return [(p, s) for p, s in conn.execute("SELECT pattern, spec FROM series_policy_rules ORDER BY position, pattern")]

    def _policy_specs(self, conn: sqlite3.Connection, names: Sequence[str]) -> list[str]:
        rules = tuple(conn.execute("SELECT pattern, spec FROM series_policy_rules ORDER BY position, pattern"))
        if rules != self._resolved[0]:
            self._resolved = (rules, {})
        cache = self._resolved[1]
        if len(cache) > 500_000:
            cache.clear()
        parsed = [(p, parse_policy(s)) for p, s in rules]
        out = []
        for name in names:
            spec = cache.get(name)
            if spec is None:
                spec = cache[name] = resolve(name, parsed).spec
            out.append(spec)
        return out

    # --- series -----------------------------------------------------------------------
    def _rows_by_name(self, conn: sqlite3.Connection, names: Sequence[str], *, fresh: bool = False) -> dict[str, SeriesRow]:
        """Rows of these series that exist, from the cache unless ``fresh``."""
        found: dict[str, SeriesRow] = {}
        missing = list(names)
        if not fresh:
            cache = self._rows
            found = {n: cache[n] for n in names if n in cache}
            missing = [n for n in names if n not in found]
        for part in blockio.chunks_of(missing, _MAX_PARAMS):
            marks = ",".join("?" * len(part))
            for row in conn.execute(f"SELECT {_SERIES_COLUMNS} FROM series WHERE name IN ({marks})", list(part)):
                found[row[1]] = self._rows[row[1]] = SeriesRow.from_db(row)
        return found

    def _ensure_series(self, conn: sqlite3.Connection, names: Sequence[str], now: float) -> tuple[list[SeriesRow], int]:
        """Rows for the names (created on first sight), with the policy the rules give now."""
        found = self._rows_by_name(conn, names)
        specs = self._policy_specs(conn, names)
        missing = [(n, s, now) for n, s in zip(names, specs) if n not in found]
        if missing:
            conn.executemany("INSERT INTO series(name, policy, created_at) VALUES (?,?,?)", missing)
            found.update(self._rows_by_name(conn, [m[0] for m in missing], fresh=True))
        changed = [(s, n) for n, s in zip(names, specs) if found[n].policy.spec != s]
        if changed:
            # new data follows the new policy at once; the old one is kept for reshape
            conn.executemany(
                "UPDATE series SET reshape_from = coalesce(reshape_from, policy), policy = ? WHERE name = ?", changed
            )
            found.update(self._rows_by_name(conn, [n for _, n in changed], fresh=True))
        return [found[n] for n in names], len(missing)

    def _match(self, conn: sqlite3.Connection, pattern: str) -> list[SeriesRow]:
        """Series named exactly ``pattern``, else those matching it as a glob."""
        row = conn.execute(f"SELECT {_SERIES_COLUMNS} FROM series WHERE name = ?", (pattern,)).fetchone()
        if row is not None:
            return [SeriesRow.from_db(row)]
        return [SeriesRow.from_db(r) for r in conn.execute(
            f"SELECT {_SERIES_COLUMNS} FROM series WHERE name GLOB ? ORDER BY name", (pattern,))]

    def define(self, name: str, *, labels: dict[str, Any] | None = None, interval: float | None = None,
               now: float) -> SeriesRow:
        """Create or update a series' metadata.  ``labels`` replaces the labels when given;
        ``interval`` (expected seconds between samples, 0 to clear) lets buckets report how
        many samples they expected."""
        if intake.check_name(name) is None:
            raise BadSeriesQuery(f"bad series name {name!r}: 1-200 characters, no control or glob characters", field="name")
        if interval is not None and (interval < 0 or not np.isfinite(interval)):
            raise BadSeriesQuery("interval must be a positive number of seconds (0 clears it)", field="interval")
        with self._transaction() as conn:
            [row], _ = self._ensure_series(conn, [name], now)
            if labels is not None:
                conn.execute("UPDATE series SET labels = ? WHERE id = ?", (orjson.dumps(labels).decode(), row.id))
            if interval is not None:
                conn.execute("UPDATE series SET interval_s = ? WHERE id = ?", (interval or None, row.id))
            return SeriesRow.from_db(conn.execute(f"SELECT {_SERIES_COLUMNS} FROM series WHERE id = ?", (row.id,)).fetchone())

    def list_series(self, pattern: str = "*") -> list[SeriesRow]:
        with self.store._read() as conn:
            return self._match(conn, pattern)

    def get(self, name: str) -> SeriesRow:
        with self.store._read() as conn:
            row = conn.execute(f"SELECT {_SERIES_COLUMNS} FROM series WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownSeries(name)
        return SeriesRow.from_db(row)

    # --- writes -----------------------------------------------------------------------
    def write(self, samples: SampleInput, *, source: str | None = None, now: float) -> WriteResult:
        """Store samples of many series in one transaction: ``[(name, times, values), ...]``
        with times in epoch seconds.  Bad samples are rejected with reasons, never stored."""
        taken = intake.read_samples(samples, self._rows)
        if taken.total == 0:
            return WriteResult(batch_id=None)
        with self._transaction(keeps_rows=True) as conn:
            batch_id = self.store.new_batch(conn, "series", source, now)
            specs = self._policy_specs(conn, taken.names)
            oldest_of = {spec: parse_policy(spec).oldest_accepted(now) for spec in set(specs)}
            oldest = np.array([oldest_of[spec] for spec in specs], dtype=np.float64)
            code = intake.judge(taken, oldest, now + self.future_tolerance)
            result = WriteResult(batch_id)
            self._reject(conn, result, taken, code, batch_id, source, now)
            ok = np.flatnonzero(code == intake.OK)
            if len(ok):
                # only series with a sample to keep are created
                keep = np.unique(taken.name_index[ok])
                rows, result.series_created = self._ensure_series(conn, [taken.names[i] for i in keep.tolist()], now)
                sid_of = np.zeros(len(taken.names), dtype=np.int64)
                sid_of[keep] = [r.id for r in rows]
                self._store(conn, result, rows, sid_of[taken.name_index[ok]], taken.ts[ok], taken.values[ok],
                            batch_id, now)
            conn.execute("UPDATE batches SET finished_at = ?, records = ? WHERE id = ?", (now, result.accepted, batch_id))
        return result

    def _reject(self, conn: sqlite3.Connection, result: WriteResult, taken: intake.Intake, code: np.ndarray,
                batch_id: int, source: str | None, now: float) -> None:
        bad = np.flatnonzero(code != intake.OK)
        pairs, counts = np.unique(taken.name_index[bad] * 16 + code[bad], return_counts=True)
        for key, n in zip(pairs.tolist(), counts.tolist()):
            result.rejections.append(Rejection(taken.names[key // 16], intake.REASONS[key % 16], n))
        for name, n in taken.bad_names:
            result.rejections.append(Rejection(name, intake.BAD_NAME, n))
        result.rejected = sum(r.count for r in result.rejections)
        conn.executemany(
            "INSERT INTO rejections(path, feed, origin, received_at, reason, batch_id) VALUES (?,?,'series',?,?,?)",
            [(r.series, source, now, f"{r.reason}: {r.count} sample{'s' if r.count != 1 else ''}", batch_id)
             for r in result.rejections],
        )

    def _store(self, conn: sqlite3.Connection, result: WriteResult, rows: list[SeriesRow], sid: np.ndarray,
               ts: np.ndarray, values: np.ndarray, batch_id: int, now: float) -> None:
        ts_us = to_us(ts)
        in_order = (sid[1:] > sid[:-1]) | ((sid[1:] == sid[:-1]) & (ts_us[1:] > ts_us[:-1]))
        if not in_order.all():
            # within one write the last occurrence of a (series, time) wins
            order = np.lexsort((np.arange(len(sid)), ts_us, sid))
            sid, ts_us, values = sid[order], ts_us[order], values[order]
            last = np.r_[(sid[1:] != sid[:-1]) | (ts_us[1:] != ts_us[:-1]), True]
            result.replaced += int(len(last) - last.sum())
            sid, ts_us, values = sid[last], ts_us[last], values[last]
        result.accepted = len(sid)
        chunk_sids, firsts, lengths = np.unique(sid, return_index=True, return_counts=True)
        first_chunk = blockio.insert_chunks(conn, batch_id, sid, ts_us, values)
        row_of = {r.id: r for r in rows}
        shadow = self._shadowed(conn, row_of, sid, ts_us, chunk_sids, firsts, lengths, first_chunk)
        result.replaced += len(shadow)
        new = RawSamples(sid, ts_us, values, np.zeros(len(sid), np.int64))
        last_us = BySeries(chunk_sids, [NO_RAW_FROM if row_of[s].last_us is None else row_of[s].last_us
                                        for s in chunk_sids.tolist()])
        finer: BucketArrays | None = None
        for tier, members, cutoffs in tier_groups([row_of[s] for s in chunk_sids.tolist()], now):
            everyone = len(members) == len(chunk_sids)
            finer = self._update_tier(conn, tier, members, cutoffs, row_of, new, shadow, last_us, everyone, finer)
        if batch_id % COMPACT_CHECK == 0:
            blockio.compact_dirty(conn, alpha_lookup(conn, row_of))
        ts_max = ts_us[firsts + lengths - 1]
        conn.executemany(
            "UPDATE series SET last_us = max(coalesce(last_us, ?1), ?1) WHERE id = ?2",
            zip(ts_max.tolist(), chunk_sids.tolist()),
        )
        for s, t in zip(chunk_sids.tolist(), ts_max.tolist()):  # keep the cached rows true
            row = row_of[s]
            row.last_us = t if row.last_us is None else max(row.last_us, t)

    def _shadowed(self, conn: sqlite3.Connection, row_of: dict[int, SeriesRow], sid: np.ndarray, ts_us: np.ndarray,
                  chunk_sids: np.ndarray, firsts: np.ndarray, lengths: np.ndarray, first_chunk: int) -> RawSamples:
        """Earlier samples the new ones supersede (same series and time), from raw storage.
        Only series that already hold samples at or after the new ones' first time are read."""
        lo = ts_us[firsts]
        hi = ts_us[firsts + lengths - 1] + 1
        last = np.array([row_of[s].last_us if row_of[s].last_us is not None else NO_RAW_FROM
                         for s in chunk_sids.tolist()], dtype=np.int64)
        maybe = lo <= last
        if not maybe.any():
            return RawSamples.empty()
        raw = blockio.load_raw(conn, chunk_sids[maybe], lo[maybe], hi[maybe])
        old = blockio.effective(raw.take(np.flatnonzero(raw.chunk < first_chunk)))
        _, ib = match_pairs(sid, ts_us, old.sid, old.ts)
        return old.take(np.sort(ib))

    def _update_tier(self, conn: sqlite3.Connection, tier: TierIO, members: np.ndarray, cutoffs: np.ndarray,
                     row_of: dict[int, SeriesRow], new: RawSamples, shadow: RawSamples, last_us: BySeries,
                     everyone: bool, finer: BucketArrays | None) -> BucketArrays | None:
        """Bring one tier's buckets up to date with a write's samples (see module doc).
        Returns the partials of all the write's samples when this tier took them all, so the
        next (coarser) tier can reuse them; ``finer`` is that of the previous tier."""
        step = tier.step
        cutoff = BySeries(members, cutoffs)
        adds, gone = in_tier(new, step, cutoff, everyone=everyone), in_tier(shadow, step, cutoff, everyone=everyone)
        parts = []
        r_sid = r_lo = r_hi = np.zeros(0, np.int64)
        if len(gone):
            g_start = bucket_starts(gone.ts, step)
            raw_from = np.array([row_of[s].raw_from_us for s in gone.sid.tolist()], dtype=np.int64)
            covered = g_start * US >= raw_from
            r_sid, r_lo, r_hi = coalesce_runs(gone.sid[covered], g_start[covered], step)
            far = np.flatnonzero(~covered)
            parts.append(removal_arrays(gone.sid[far], gone.ts[far], gone.value[far], step, tier.alpha))
            inside = blockio.in_ranges(adds.sid, bucket_starts(adds.ts, step), r_sid, r_lo, r_hi)
            adds = adds.take(np.flatnonzero(~inside))
        whole = adds is new and len(gone) == 0
        coarse = None
        if whole and finer is not None and finer.alpha == tier.alpha:
            # each finer bucket is the only one of its coarser bucket (e.g. one hour of data in
            # a day): the coarser partials are the same rows, re-keyed
            starts = np.floor_divide(finer.start, step) * step
            g = finer.group
            if np.all((g[1:] > g[:-1]) | ((g[1:] == g[:-1]) & (starts[1:] > starts[:-1]))):
                coarse = finer.with_keys(g, starts)
        if coarse is None:
            coarse = aggregate_arrays(adds.sid, adds.ts, adds.value, step, tier.alpha, implicit=True)
        parts.append(coarse)
        blockio.append_partials(conn, tier, concat_arrays(parts, alpha=tier.alpha), last_us)
        if len(r_sid):
            maintenance.recompute(conn, tier, r_sid, r_lo, r_hi)
        return coarse if whole else None

    # --- maintenance ------------------------------------------------------------------
    def revert(self, batch_id: int, *, now: float) -> RevertResult:
        """Take a write's samples out and recompute exactly the buckets it touched."""
        with self._transaction() as conn:
            return maintenance.revert(self, conn, batch_id, now)

    def prune(self, *, now: float) -> PruneResult:
        """Delete what retention no longer keeps, so a series' storage stops growing, and
        compact the blocks that closed (their span ended) since their last compaction.  Run it
        periodically (e.g. hourly)."""
        with self._transaction() as conn:
            return maintenance.prune(self, conn, now)

    def rebuild(self, pattern: str, since: float | None = None, *, now: float) -> RebuildResult:
        """Recompute the buckets of matching series from raw samples, from ``since`` on
        (only buckets whose samples raw storage still holds in full)."""
        with self._transaction() as conn:
            return maintenance.rebuild(self, conn, pattern, since, now)

    def reshape(self, pattern: str = "*", *, now: float) -> ReshapeResult:
        """Convert stored tiers of series whose policy changed to the new policy."""
        with self._transaction() as conn:
            return maintenance.reshape(self, conn, pattern, now)

    # --- reads ------------------------------------------------------------------------
    def series(self, name_or_pattern: str, start: float, end: float, step: int | None = None,
               stats: Sequence[str] = DEFAULT_STATS, agg: str | None = None, *, now: float | None = None) -> SeriesAnswer:
        """Points of the series named (or matching the glob) over [start, end), from the finest
        tier that covers the span, merged up to ``step`` seconds (None: the tier's own step;
        0: one point for the whole span).  ``agg``: None (one result per series), "merge"
        (buckets and sketches of all series merged: the fleet's distribution) or "sum" (each
        stat summed across series per step).  ``now`` (default: the clock) decides which tiers
        still cover the span.  Raises BadSeriesQuery, UnknownSeries."""
        now = time.time() if now is None else now
        with self.store._read() as conn:
            return reads.series(self, conn, name_or_pattern, start, end, step, stats, agg, now)

    def samples(self, name: str, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """Raw samples in force (duplicates resolved) of one series in [start, end)."""
        row = self.get(name)
        with self.store._read() as conn:
            raw = blockio.effective(blockio.load_raw(conn, [row.id], [to_us([start])[0]], [to_us([end])[0]]))
        return raw.ts / US, raw.value

    def buckets(self, name: str, step: int, start: float | None = None, end: float | None = None) -> BucketArrays:
        """Stored buckets of one tier of one series (partials merged), as BucketArrays."""
        row = self.get(name)
        lo = -(1 << 40) if start is None else int(np.floor(start))
        hi = 1 << 40 if end is None else int(np.ceil(end))
        tier = TierIO(step, row.alpha(step))
        with self.store._read() as conn:
            arr = blockio.decode(blockio.load_blocks(conn, tier, [row.id], [lo], [hi]), tier)
        return arr.take((arr.start >= lo) & (arr.start < hi))

