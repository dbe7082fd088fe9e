"""Buckets: count, sum, min, max, first and last sample time, and a quantile sketch per time step.

Pure functions of arrays, no database.  Every field merges exactly (counts and sketch bins
add, min/max/first/last take the extreme), so a bucket of an hour is the merge of its
minutes, a day the merge of its hours, and a fleet the merge of its machines; only the
float sum depends (within rounding) on the order in which it was added up.

Two shapes:
* :class:`Bucket`: one bucket, for callers and tests (times in float epoch seconds);
* :class:`BucketArrays`: many buckets column by column (times in integer microseconds), what
  the store builds, merges and encodes without a Python loop per bucket.

A *partial* is a BucketArrays row that is only part of its bucket (one write's samples); the
store appends partials and merges them when it reads or compacts.  A *removal* partial has
negative counts: it takes samples back out when their bucket can no longer be recomputed
from raw samples.  Count, sum and sketch then shrink exactly, but min, max, first and last
cannot (the next-smallest value is not known): such a bucket is flagged ``inexact`` and its
min/max/first/last are bounds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from telmon.rollup import sketch as sk
from telmon.rollup.sketch import DEFAULT_ALPHA, Entries, QuantileSketch

US = 1_000_000  # microseconds per second: sample times are kept as int64 microseconds
NO_FIRST = np.iinfo(np.int64).max
NO_LAST = np.iinfo(np.int64).min


def to_us(ts: np.ndarray | Sequence[float]) -> np.ndarray:
    """Float epoch seconds -> int64 microseconds (the resolution at which duplicates are judged)."""
    return np.round(np.asarray(ts, dtype=np.float64) * US).astype(np.int64)


def bucket_starts(ts_us: np.ndarray, step: int) -> np.ndarray:
    """Start (int epoch seconds) of the step-aligned bucket holding each time."""
    return np.floor_divide(ts_us, step * US) * step


@dataclass(slots=True)
class BucketArrays:
    """Buckets (or partial buckets) column by column; row i is one bucket."""

    group: np.ndarray  # int64: whose bucket (a series number, or 0)
    start: np.ndarray  # int64 epoch seconds
    count: np.ndarray  # int64
    sum: np.ndarray  # float64
    min: np.ndarray  # float64 (+inf when count <= 0)
    max: np.ndarray  # float64 (-inf when count <= 0)
    first: np.ndarray  # int64 microseconds (NO_FIRST when count <= 0)
    last: np.ndarray  # int64 microseconds (NO_LAST when count <= 0)
    inexact: np.ndarray  # bool: min/max/first/last are bounds (see module doc)
    sketch: Entries  # owner = row number
    alpha: float = DEFAULT_ALPHA
    # True: rows of count 1 or 2 with exact min/max may lack sketch entries -- theirs are
    # the keys of min (and max).  The write path leaves them out (they are never stored);
    # anything that reads sketches calls materialise() first.
    implicit: bool = False

    def __len__(self) -> int:
        return len(self.group)

    @staticmethod
    def empty(alpha: float = DEFAULT_ALPHA) -> BucketArrays:
        i, f = np.zeros(0, np.int64), np.zeros(0, np.float64)
        return BucketArrays(i, i, i, f, f, f, i, i, np.zeros(0, bool), Entries.empty(), alpha)

    def take(self, rows: np.ndarray) -> BucketArrays:
        """The given rows (a sorted index or a boolean mask), sketches renumbered."""
        rows = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows, dtype=np.int64)
        renumber = np.full(len(self), -1, dtype=np.int64)
        renumber[rows] = np.arange(len(rows))
        new_owner = renumber[self.sketch.owner]
        kept = np.flatnonzero(new_owner >= 0)
        entries = self.sketch.take(kept).with_owner(new_owner[kept])
        if len(rows) and np.any(np.diff(rows) < 0):
            entries = sk.normalise(entries, keep_negative=True)
        return BucketArrays(
            self.group[rows], self.start[rows], self.count[rows], self.sum[rows], self.min[rows], self.max[rows],
            self.first[rows], self.last[rows], self.inexact[rows], entries, self.alpha, self.implicit,
        )

    def with_keys(self, group: np.ndarray, start: np.ndarray) -> BucketArrays:
        return BucketArrays(
            np.asarray(group, np.int64), np.asarray(start, np.int64), self.count, self.sum, self.min, self.max,
            self.first, self.last, self.inexact, self.sketch, self.alpha, self.implicit,
        )


def implied(count: np.ndarray, inexact: np.ndarray) -> np.ndarray:
    """Rows whose sketch follows from min and max: one or two samples, extremes exact."""
    return ((count == 1) | (count == 2)) & ~inexact


def materialise(arr: BucketArrays) -> BucketArrays:
    """The same buckets with every sketch entry present (see BucketArrays.implicit)."""
    if not arr.implicit:
        return arr
    missing = implied(arr.count, arr.inexact)
    missing[arr.sketch.owner] = False
    rows = np.flatnonzero(missing)
    two = rows[arr.count[rows] == 2]
    derived = sk.from_values(np.r_[rows, two], np.r_[arr.min[rows], arr.max[two]], arr.alpha)
    return BucketArrays(
        arr.group, arr.start, arr.count, arr.sum, arr.min, arr.max, arr.first, arr.last, arr.inexact,
        sk.normalise(sk.concat([arr.sketch, derived]), keep_negative=True), arr.alpha, False,
    )


def aggregate_arrays(
    group: np.ndarray, ts_us: np.ndarray, values: np.ndarray, step: int, alpha: float = DEFAULT_ALPHA,
    *, implicit: bool = False,
) -> BucketArrays:
    """Samples -> one bucket per (group, step-aligned start), rows sorted by (group, start).

    Vectorised: one sort (skipped when the samples already come sorted by group then time),
    then ``reduceat`` over the bucket boundaries.  ``implicit``: leave out the sketch entries
    that min and max imply (see BucketArrays.implicit)."""
    group = np.asarray(group, dtype=np.int64)
    ts_us = np.asarray(ts_us, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return BucketArrays.empty(alpha)
    same = group[1:] == group[:-1]
    if not np.all((group[1:] > group[:-1]) | (same & (ts_us[1:] >= ts_us[:-1]))):
        order = np.lexsort((ts_us, group))
        group, ts_us, values = group[order], ts_us[order], values[order]
        same = group[1:] == group[:-1]
    start = bucket_starts(ts_us, step)
    new_bucket = np.r_[True, ~same | (start[1:] != start[:-1])]
    if new_bucket.all():
        # one sample per bucket (minute samples in minute buckets): nothing to reduce
        n = len(values)
        sketch = Entries.empty() if implicit else sk.from_values(np.arange(n), values, alpha)
        return BucketArrays(group, start, np.ones(n, np.int64), values.copy(), values.copy(), values.copy(),
                            ts_us.copy(), ts_us.copy(), np.zeros(n, bool), sketch, alpha, implicit)
    starts = np.flatnonzero(new_bucket)
    ends = np.r_[starts[1:], len(values)]
    count = ends - starts
    rows = np.repeat(np.arange(len(starts)), count)
    if implicit:
        # only buckets of three samples or more need their sketch computed
        wanted = np.repeat(count > 2, count)
        sketch = sk.from_values(rows[wanted], values[wanted], alpha)
    else:
        sketch = sk.from_values(rows, values, alpha)
    return BucketArrays(
        group=group[starts],
        start=start[starts],
        count=count.astype(np.int64),
        sum=np.add.reduceat(values, starts),
        min=np.minimum.reduceat(values, starts),
        max=np.maximum.reduceat(values, starts),
        first=ts_us[starts],
        last=ts_us[ends - 1],
        inexact=np.zeros(len(starts), dtype=bool),
        sketch=sketch,
        alpha=alpha,
        implicit=implicit,
    )


def removal_arrays(
    group: np.ndarray, ts_us: np.ndarray, values: np.ndarray, step: int, alpha: float = DEFAULT_ALPHA
) -> BucketArrays:
    """Partials that take these samples back out of their buckets (negative counts)."""
    arr = aggregate_arrays(group, ts_us, values, step, alpha)
    n = len(arr)
    return BucketArrays(
        arr.group, arr.start, -arr.count, -arr.sum, np.full(n, np.inf), np.full(n, -np.inf),
        np.full(n, NO_FIRST, np.int64), np.full(n, NO_LAST, np.int64), np.ones(n, dtype=bool),
        arr.sketch.negated(), alpha,
    )


def concat_arrays(parts: Sequence[BucketArrays], alpha: float | None = None) -> BucketArrays:
    """Rows of several BucketArrays, in order (not merged)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return BucketArrays.empty(DEFAULT_ALPHA if alpha is None else alpha)
    a = parts[0].alpha if alpha is None else alpha
    if any(p.alpha != a for p in parts):
        parts = [convert_arrays(p, a) for p in parts]
    offsets = np.cumsum([0] + [len(p) for p in parts[:-1]])
    entries = sk.concat([p.sketch.with_owner(p.sketch.owner + off) for p, off in zip(parts, offsets)])
    cols = {f: np.concatenate([getattr(p, f) for p in parts])
            for f in ("group", "start", "count", "sum", "min", "max", "first", "last", "inexact")}
    return BucketArrays(**cols, sketch=entries, alpha=a, implicit=any(p.implicit for p in parts))


def convert_arrays(arr: BucketArrays, alpha: float) -> BucketArrays:
    """The same buckets with sketches re-binned to another accuracy (errors compound)."""
    if arr.alpha == alpha:
        return arr
    arr = materialise(arr)
    return BucketArrays(
        arr.group, arr.start, arr.count, arr.sum, arr.min, arr.max, arr.first, arr.last, arr.inexact,
        sk.convert(arr.sketch, arr.alpha, alpha), alpha,
    )


def merge_rows(arr: BucketArrays, group: np.ndarray | None = None, start: np.ndarray | None = None,
               *, drop_empty: bool = True) -> BucketArrays:
    """Merge rows sharing (group, start) -- by default their own keys -- into one bucket each.

    Output sorted by (group, start).  Rows whose counts net to zero (all samples removed)
    are dropped unless ``drop_empty`` is False."""
    arr = materialise(arr)
    group = arr.group if group is None else np.asarray(group, dtype=np.int64)
    start = arr.start if start is None else np.asarray(start, dtype=np.int64)
    if len(arr) == 0:
        return BucketArrays.empty(arr.alpha)
    if np.all((group[1:] > group[:-1]) | ((group[1:] == group[:-1]) & (start[1:] > start[:-1]))):
        # already one row per key, in order (compacted blocks, a tier read at its own step)
        same = BucketArrays(group, start, arr.count, arr.sum, arr.min, arr.max, arr.first, arr.last,
                            arr.inexact | (arr.count < 0), arr.sketch, arr.alpha)
        return same.take(same.count > 0) if drop_empty and np.any(same.count <= 0) else same
    order = np.lexsort((start, group))
    g, s = group[order], start[order]
    first_rows = np.flatnonzero(np.r_[True, (g[1:] != g[:-1]) | (s[1:] != s[:-1])])
    out_of_sorted = np.cumsum(np.r_[False, (g[1:] != g[:-1]) | (s[1:] != s[:-1])])
    out_of_row = np.empty(len(arr), dtype=np.int64)
    out_of_row[order] = out_of_sorted
    entries = sk.normalise(arr.sketch.with_owner(out_of_row[arr.sketch.owner]), keep_negative=True)
    merged = BucketArrays(
        group=g[first_rows],
        start=s[first_rows],
        count=np.add.reduceat(arr.count[order], first_rows),
        sum=np.add.reduceat(arr.sum[order], first_rows),
        min=np.minimum.reduceat(arr.min[order], first_rows),
        max=np.maximum.reduceat(arr.max[order], first_rows),
        first=np.minimum.reduceat(arr.first[order], first_rows),
        last=np.maximum.reduceat(arr.last[order], first_rows),
        inexact=np.maximum.reduceat(arr.inexact[order] | (arr.count[order] < 0), first_rows),
        sketch=entries,
        alpha=arr.alpha,
    )
    if drop_empty and np.any(merged.count <= 0):
        merged = merged.take(merged.count > 0)
    return merged


def rebucket(arr: BucketArrays, step: int, *, group: np.ndarray | None = None) -> BucketArrays:
    """Merge buckets into coarser step-aligned ones (optionally regrouped, e.g. all series -> 0)."""
    start = np.floor_divide(arr.start, step) * step
    return merge_rows(arr, arr.group if group is None else group, start)


# --- statistics -------------------------------------------------------------------------

_QUANTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")
BASIC_STATS = ("count", "sum", "min", "max", "mean", "first_ts", "last_ts", "expected", "completeness", "inexact")
DEFAULT_STATS = ("count", "sum", "min", "max", "mean", "p50", "p95", "p99")


def stat_quantile(name: str) -> float | None:
    """'p95' -> 0.95, 'p99.9' -> 0.999, 'median' -> 0.5; None for a non-quantile stat."""
    if name == "median":
        return 0.5
    m = _QUANTILE.match(name)
    return float(m.group(1)) / 100 if m else None


def check_stats(names: Sequence[str]) -> list[str]:
    """Validated stat names; raises ValueError naming the first unknown one."""
    out = []
    for name in names:
        name = name.strip().lower()
        if name not in BASIC_STATS and stat_quantile(name) is None:
            raise ValueError(f"unknown stat {name!r}: use {', '.join(BASIC_STATS)}, median or pNN (e.g. p95, p99.9)")
        out.append(name)
    return out


def expected_counts(start: np.ndarray, step: int, interval: float | None, now: float | None = None) -> np.ndarray:
    """Samples a series with one sample per ``interval`` seconds should have put in each bucket;
    the bucket holding ``now`` only expects the part already elapsed."""
    start = np.asarray(start, dtype=np.float64)
    if not interval:
        return np.full(len(start), np.nan)
    end = start + step
    if now is not None:
        end = np.clip(np.minimum(end, now), start, None)
    return (end - start) / interval


def compute_stats(arr: BucketArrays, names: Sequence[str], *, expected: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Each named stat as an array over the rows of ``arr`` (NaN where undefined).

    Quantiles come from the merged sketch, clamped into [min, max] (which only tightens the
    estimate: the true value lies within them)."""
    names = check_stats(names)
    arr = materialise(arr)
    n = len(arr)
    count = arr.count.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: dict[str, np.ndarray] = {}
        qnames = [x for x in names if stat_quantile(x) is not None]
        if qnames:
            qs = sk.quantiles(arr.sketch, n, [stat_quantile(x) for x in qnames], arr.alpha)
            lo = np.where(np.isfinite(arr.min), arr.min, -np.inf)[:, None]
            hi = np.where(np.isfinite(arr.max), arr.max, np.inf)[:, None]
            qs = np.clip(qs, lo, hi)
            out.update({x: qs[:, j] for j, x in enumerate(qnames)})
        exp = np.full(n, np.nan) if expected is None else expected
        for name in names:
            if name in out:
                continue
            if name == "count":
                out[name] = arr.count.copy()
            elif name == "sum":
                out[name] = arr.sum.copy()
            elif name == "min":
                out[name] = np.where(count > 0, arr.min, np.nan)
            elif name == "max":
                out[name] = np.where(count > 0, arr.max, np.nan)
            elif name == "mean":
                out[name] = np.where(count > 0, arr.sum / count, np.nan)
            elif name == "first_ts":
                out[name] = np.where(count > 0, arr.first / US, np.nan)
            elif name == "last_ts":
                out[name] = np.where(count > 0, arr.last / US, np.nan)
            elif name == "expected":
                out[name] = exp
            elif name == "completeness":
                out[name] = np.where(exp > 0, count / exp, np.nan)
            elif name == "inexact":
                out[name] = arr.inexact.copy()
    return out


# --- one bucket at a time ---------------------------------------------------------------

@dataclass(slots=True)
class Bucket:
    """One bucket.  Times are float epoch seconds."""

    start: float
    step: float
    count: int
    sum: float
    min: float
    max: float
    first_ts: float
    last_ts: float
    sketch: QuantileSketch = field(default_factory=QuantileSketch)
    expected: float | None = None
    inexact: bool = False

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else math.nan

    def quantile(self, q: float) -> float:
        """Sketch estimate clamped into [min, max]; NaN for an empty bucket."""
        if self.count <= 0:
            return math.nan
        return float(min(max(self.sketch.quantile(q), self.min), self.max))


def to_buckets(arr: BucketArrays, step: int) -> list[Bucket]:
    arr = materialise(arr)
    out = []
    for i in range(len(arr)):
        mine = np.flatnonzero(arr.sketch.owner == i)
        out.append(Bucket(
            start=float(arr.start[i]), step=float(step), count=int(arr.count[i]), sum=float(arr.sum[i]),
            min=float(arr.min[i]), max=float(arr.max[i]), first_ts=float(arr.first[i] / US), last_ts=float(arr.last[i] / US),
            sketch=QuantileSketch(arr.alpha, arr.sketch.take(mine)), inexact=bool(arr.inexact[i]),
        ))
    return out


def from_buckets(buckets: Sequence[Bucket], alpha: float | None = None) -> BucketArrays:
    if not buckets:
        return BucketArrays.empty(DEFAULT_ALPHA if alpha is None else alpha)
    a = buckets[0].sketch.alpha if alpha is None else alpha
    sketches = [b.sketch if b.sketch.alpha == a else b.sketch.converted(a) for b in buckets]
    entries = sk.concat([s.entries.with_owner(np.full(len(s.entries), i, np.int64)) for i, s in enumerate(sketches)])
    n = len(buckets)
    return BucketArrays(
        group=np.zeros(n, np.int64),
        start=np.array([int(b.start) for b in buckets], np.int64),
        count=np.array([b.count for b in buckets], np.int64),
        sum=np.array([b.sum for b in buckets], np.float64),
        min=np.array([b.min for b in buckets], np.float64),
        max=np.array([b.max for b in buckets], np.float64),
        first=to_us([b.first_ts for b in buckets]),
        last=to_us([b.last_ts for b in buckets]),
        inexact=np.array([b.inexact for b in buckets], bool),
        sketch=entries,
        alpha=a,
    )


def aggregate(ts: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray, step: int,
              alpha: float = DEFAULT_ALPHA) -> list[Bucket]:
    """Samples (float epoch seconds, finite values) -> one Bucket per step-aligned span that has any."""
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("buckets only take finite values")
    arr = aggregate_arrays(np.zeros(len(values), np.int64), to_us(ts), values, step, alpha)
    return to_buckets(arr, step)


def merge(buckets: Sequence[Bucket]) -> Bucket:
    """One bucket holding everything the given buckets hold (spanning from the first start
    to the last end).  Raises ValueError on an empty sequence."""
    if not buckets:
        raise ValueError("nothing to merge")
    arr = from_buckets(buckets)
    merged = merge_rows(arr, np.zeros(len(arr), np.int64), np.zeros(len(arr), np.int64), drop_empty=False)
    lo = min(b.start for b in buckets)
    hi = max(b.start + b.step for b in buckets)
    [one] = to_buckets(merged, 1)
    one.start, one.step = lo, hi - lo
    exp = [b.expected for b in buckets if b.expected is not None]
    one.expected = float(sum(exp)) if exp else None
    return one
