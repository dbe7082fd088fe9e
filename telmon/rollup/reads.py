"""The one question: points of a series (or of all series matching a pattern) over a span.

The caller never names a tier: each series' policy says which stored tier covers the span
(tiers.choose_tier), its buckets are merged up to the step asked, and the statistics come
from the merged buckets -- quantiles from merged sketches, never from averaged quantiles.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from telmon.rollup import blockio
from telmon.rollup.blockio import TierIO
from telmon.rollup.buckets import (
    US, BucketArrays, aggregate_arrays, check_stats, compute_stats, concat_arrays, convert_arrays,
    expected_counts, merge_rows, rebucket,
)
from telmon.rollup.errors import BadSeriesQuery, UnknownSeries
from telmon.rollup.results import SeriesAnswer, SeriesPoints
from telmon.rollup.series_rows import SeriesRow
from telmon.rollup.tiers import TierChoice, choose_tier

if TYPE_CHECKING:
    from telmon.rollup.store import SeriesStore

AGGREGATIONS = (None, "merge", "sum")
MAX_POINTS = 100_000  # per series: past this, ask for a larger step
MAX_TOTAL_POINTS = 2_000_000


def series(ss: SeriesStore, conn: sqlite3.Connection, name_or_pattern: str, start: float, end: float,
           step: int | None, stats: Sequence[str], agg: str | None, now: float) -> SeriesAnswer:
    try:
        stat_names = check_stats(list(stats))
    except ValueError as exc:
        raise BadSeriesQuery(str(exc), field="stats") from None
    if agg not in AGGREGATIONS:
        raise BadSeriesQuery(f"agg must be 'merge' or 'sum', not {agg!r}", field="agg")
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        raise BadSeriesQuery("end must come after start", field="end")
    if step is not None and (int(step) != step or step < 0):
        raise BadSeriesQuery("step must be a whole number of seconds (0: one point for the whole span)", field="step")
    rows = ss._match(conn, name_or_pattern)
    if not rows:
        raise UnknownSeries(name_or_pattern)
    if step == 0:
        return _whole_span(conn, rows, name_or_pattern, start, end, stat_names, agg, now)
    choices = [choose_tier(r.policy, start, end, now, step) for r in rows]
    if agg is not None:
        choices = _common_step(rows, choices, start, end, now)
    notes = []
    for r, c in zip(rows, choices):
        if step is not None and c.step != step:
            notes.append(f"{r.name}: step {step}s is not a multiple of its {c.tier}s tier; using {c.step}s")
        if r.reshape_from is not None:
            notes.append(f"{r.name}: policy changed; run `telmon rollup reshape` to carry older tiers over")
    total = 0
    for c in choices:
        n = math.ceil((end - math.floor(start / c.step) * c.step) / c.step)
        if n > MAX_POINTS:
            raise BadSeriesQuery(f"{n} points per series at step {c.step}s: ask for a larger step", field="step")
        total += n
    if total > MAX_TOTAL_POINTS:
        raise BadSeriesQuery(f"{total} points in all: narrow the pattern or ask for a larger step", field="step")

    per_series = _load(conn, rows, choices, start, end)
    answer = SeriesAnswer(start, end, choices[0].step if agg else (step or choices[0].step), stat_names, agg, [],
                          covered=all(c.covered for c in choices), notes=notes[:20])
    if agg is None:
        for row, choice, arr in zip(rows, choices, per_series):
            exp = _expected(arr.start, choice.step, [row], now)
            arr, exp = _fill(arr, exp, choice.step, start, end, now, row, stat_names)
            points = _points(arr.start, compute_stats(arr, stat_names, expected=exp), stat_names)
            answer.series.append(SeriesPoints(row.name, points, row.labels, [row.name], choice.tier))
        return answer
    out_step = choices[0].step
    members = [r.name for r in rows]
    if agg == "merge":
        alpha = max(a.alpha for a in per_series)
        everything = concat_arrays([convert_arrays(a, alpha) for a in per_series], alpha=alpha)
        merged = rebucket(everything, out_step, group=np.zeros(len(everything), np.int64))
        exp = _expected(merged.start, out_step, rows, now)
        points = _points(merged.start, compute_stats(merged, stat_names, expected=exp), stat_names)
    else:
        points = _summed(rows, per_series, out_step, stat_names, now)
    tiers = sorted({c.tier for c in choices})
    answer.series.append(SeriesPoints(name_or_pattern, points, {}, members, tiers[0] if len(tiers) == 1 else -1))
    return answer


def _whole_span(conn: sqlite3.Connection, rows: list[SeriesRow], pattern: str, start: float, end: float,
                stats: list[str], agg: str | None, now: float) -> SeriesAnswer:
    """One point per series (or one in all) for the whole span, from each series' finest
    covering tier.  The point starts where that tier's first bucket does."""
    choices = [choose_tier(r.policy, start, end, now, None) for r in rows]
    per_series = _load(conn, rows, choices, start, end)
    collapsed = []
    for row, choice, arr in zip(rows, choices, per_series):
        lo = math.floor(start / choice.tier) * choice.tier
        one = merge_rows(arr, arr.group, np.full(len(arr), lo, np.int64))
        collapsed.append((row, lo, one))
    answer = SeriesAnswer(start, end, 0, stats, agg, [], covered=all(c.covered for c in choices))
    if agg is None:
        for (row, lo, one), choice in zip(collapsed, choices):
            exp = _expected(one.start, math.ceil(end) - lo, [row], now)
            points = _points(one.start, compute_stats(one, stats, expected=exp), stats)
            answer.series.append(SeriesPoints(row.name, points, row.labels, [row.name], choice.tier))
        return answer
    lo = min(lo for _, lo, _ in collapsed)
    if agg == "merge":
        alpha = max(one.alpha for _, _, one in collapsed)
        everything = concat_arrays([convert_arrays(one, alpha) for _, _, one in collapsed], alpha=alpha)
        merged = merge_rows(everything, np.zeros(len(everything), np.int64), np.full(len(everything), lo, np.int64))
        points = _points(merged.start, compute_stats(merged, stats, expected=_expected(
            merged.start, math.ceil(end) - lo, rows, now)), stats)
    else:
        points = _summed(rows, [one.with_keys(one.group, np.full(len(one), lo, np.int64)) for _, _, one in collapsed],
                         math.ceil(end) - lo, stats, now)
    answer.series.append(SeriesPoints(pattern, points, {}, [r.name for r in rows], choices[0].tier))
    return answer


def _common_step(rows: list[SeriesRow], choices: list[TierChoice], start: float, end: float, now: float) -> list[TierChoice]:
    """One step for all series of an aggregate: the coarsest chosen, if every tier divides it."""
    common = max(c.step for c in choices)
    again = [choose_tier(r.policy, start, end, now, common) for r in rows]
    if any(c.step != common for c in again):
        raise BadSeriesQuery(
            f"these series' tiers do not line up on a {common}s step: give a step that all their tiers divide",
            field="step")
    return again


def _load(conn: sqlite3.Connection, rows: list[SeriesRow], choices: list[TierChoice], start: float,
          end: float) -> list[BucketArrays]:
    """Each series' buckets merged to its chosen step over the span, in the order of rows."""
    groups: dict[tuple[int, float, int], list[int]] = {}
    for i, (row, c) in enumerate(zip(rows, choices)):
        alpha = row.alpha(c.tier) if c.tier else row.policy.tiers[0].alpha
        groups.setdefault((c.tier, alpha, c.step), []).append(i)
    out: list[BucketArrays] = [BucketArrays.empty()] * len(rows)
    for (tier_step, alpha, step), members in groups.items():
        lo = math.floor(start / step) * step
        hi = math.ceil(end)
        sids = [rows[i].id for i in members]
        if tier_step == 0:
            raw = blockio.effective(blockio.load_raw(conn, sids, [lo * US] * len(sids), [hi * US] * len(sids)))
            arr = aggregate_arrays(raw.sid, raw.ts, raw.value, step, alpha)
        else:
            tier = TierIO(tier_step, alpha)
            stored = blockio.decode(blockio.load_blocks(conn, tier, sids, [lo] * len(sids), [hi] * len(sids)), tier)
            arr = rebucket(stored.take((stored.start >= lo) & (stored.start < hi)), step)
        for i in members:
            out[i] = arr.take(arr.group == rows[i].id)
    return out


def _expected(starts: np.ndarray, step: int, rows: Sequence[SeriesRow], now: float) -> np.ndarray | None:
    """Samples expected per point from the series' expected intervals (summed over series)."""
    intervals = [r.interval for r in rows if r.interval]
    if not intervals:
        return None
    return np.sum([expected_counts(starts, step, iv, now) for iv in intervals], axis=0)


def _fill(arr: BucketArrays, exp: np.ndarray | None, step: int, start: float, end: float, now: float,
          row: SeriesRow, stats: list[str]) -> tuple[BucketArrays, np.ndarray | None]:
    """With an expected rate and a completeness question, empty steps matter: add them (count 0)."""
    if not row.interval or not ({"expected", "completeness"} & set(stats)):
        return arr, exp
    lo = math.floor(start / step) * step
    all_starts = np.arange(lo, min(end, now), step, dtype=np.int64)
    missing = np.setdiff1d(all_starts, arr.start)
    if len(missing) == 0:
        return arr, exp
    n = len(missing)
    empty = BucketArrays(
        np.full(n, row.id, np.int64), missing, np.zeros(n, np.int64), np.zeros(n), np.full(n, np.inf),
        np.full(n, -np.inf), np.full(n, np.iinfo(np.int64).max), np.full(n, np.iinfo(np.int64).min),
        np.zeros(n, bool), arr.sketch.take(np.zeros(0, np.int64)), arr.alpha,
    )
    filled = concat_arrays([arr, empty], alpha=arr.alpha)
    order = np.argsort(filled.start, kind="stable")
    filled = filled.take(order)
    return filled, expected_counts(filled.start, step, row.interval, now)


def _points(starts: np.ndarray, values: dict[str, np.ndarray], stats: list[str]) -> list[dict[str, Any]]:
    columns = [starts.tolist()] + [values[s].tolist() for s in stats]
    keys = ["t", *stats]
    return [dict(zip(keys, row)) for row in zip(*columns)]


def _summed(rows: list[SeriesRow], per_series: list[BucketArrays], step: int, stats: list[str],
            now: float) -> list[dict[str, Any]]:
    """Each stat computed per series, then added up across series per step (a series with
    no data in a step adds nothing)."""
    starts, cols = [], {s: [] for s in stats}
    for row, arr in zip(rows, per_series):
        values = compute_stats(arr, stats, expected=_expected(arr.start, step, [row], now))
        starts.append(arr.start)
        for s in stats:
            cols[s].append(np.asarray(values[s], dtype=np.float64))
    all_starts = np.concatenate(starts) if starts else np.zeros(0, np.int64)
    uniq, inv = np.unique(all_starts, return_inverse=True)
    out: dict[str, np.ndarray] = {}
    for s in stats:
        v = np.concatenate(cols[s]) if cols[s] else np.zeros(0)
        total = np.zeros(len(uniq))
        seen = np.zeros(len(uniq), bool)
        ok = ~np.isnan(v)
        np.add.at(total, inv[ok], v[ok])
        seen[inv[ok]] = True
        out[s] = np.where(seen, total, np.nan)
    return _points(uniq, out, stats)
