"""`telmon transfers` and ``GET /api/v1/transfers``: transfer statistics from the rollup tiers.

Filters (client or source, direction, machine, product type, several values each) pick
series; ``by`` says which of direction, client, machine and product stay apart (the others
are merged: counts and sums add, latency sketches merge, so a median over clients or machines
is the median of all their files, never an average of medians).  ``step`` gives one row per
step; without it, one row per group for the whole span.  Times come from the finest tier
that still covers the span's start (1-minute buckets for 14 days, hours for 2 years, days
for 10 years by default), so a row's span is widened to whole buckets of that tier.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from telmon.errors import BadRequest
from telmon.rollup.buckets import BucketArrays, compute_stats, concat_arrays, merge_rows, rebucket
from telmon.rollup.tiers import Policy, Tier
from telmon.tail.names import DIRECTIONS, parse_series, pattern
from telmon.timeutil import iso, parse_span, parse_time

DIMENSIONS = ("direction", "client", "machine", "product")
COLUMNS = ("files", "bytes", "errors", "duplicates", "over_max", "latency_min", "latency_mean", "latency_median",
           "latency_p95", "latency_max")
_LATENCY_STATS = ("count", "min", "mean", "p50", "p95", "max")
MAX_BUCKETS = 20_000  # per series read for one answer: beyond, a coarser tier answers


def _values(v: str | Sequence[str] | None) -> list[str]:
    if v is None:
        return []
    items = [v] if isinstance(v, str) else list(v)
    return [x.strip() for item in items for x in str(item).split(",") if x.strip()]


def span_bounds(start: Any = None, end: Any = None, span: Any = None, *, now: float) -> tuple[float, float]:
    """(start, end) from explicit times, or ``span`` back from ``end`` (default: now)."""
    t_end = parse_time(end, field="end") if end not in (None, "") else now
    if start not in (None, ""):
        t_start = parse_time(start, field="start")
    else:
        t_start = t_end - parse_span(span if span not in (None, "") else "24h")
    if t_end <= t_start:
        raise BadRequest("end must come after start", field="end")
    return t_start, t_end


def _tier(policy: Policy, start: float, end: float, step: int | None, now: float) -> tuple[Tier, int | None]:
    """The tier to read and the step of the points: the finest tier covering ``start`` whose
    buckets over the span stay under MAX_BUCKETS (with a step: the coarsest covering tier
    that divides it, else the step rounded up to the finest covering tier)."""
    covering = [t for t in policy.tiers if start >= t.cutoff(now)]
    if not covering:
        covering = [max(policy.tiers, key=lambda t: (t.retention, -t.step))]
    if step:
        dividing = [t for t in covering if step % t.step == 0]
        if dividing:
            return dividing[-1], step
        t = covering[0]
        return t, math.ceil(step / t.step) * t.step
    for t in covering:
        if (end - start) / t.step <= MAX_BUCKETS:
            return t, None
    return covering[-1], None


def transfers(series: Any, *, clients: Any = None, directions: Any = None, machines: Any = None,
              products: Any = None, start: Any = None, end: Any = None, span: Any = None, step: Any = None,
              by: Any = ("direction", "client"), now: float) -> dict[str, Any]:
    """Transfer statistics per group (see module doc).  Raises BadRequest for bad options."""
    t0, t1 = span_bounds(start, end, span, now=now)
    want = {"client": _values(clients), "direction": _values(directions), "machine": _values(machines),
            "product": _values(products)}
    for d in want["direction"]:
        if d not in DIRECTIONS:
            raise BadRequest(f"type must be tx or rx, not {d!r}", field="type")
    groups = [g for g in _values(by) if g != "none"]
    for g in groups:
        if g not in DIMENSIONS:
            raise BadRequest(f"by must be among {', '.join(DIMENSIONS)} or none, not {g!r}", field="by")
    step_s: int | None = None
    if step not in (None, "", 0, "0"):
        step_s = int(parse_span(step))
        if step_s < 60 or step_s % 60:
            raise BadRequest("step must be a whole number of minutes (statistics are per minute)", field="step")
    one = {k: (v[0] if len(v) == 1 else None) for k, v in want.items()}
    rows = series.list_series(pattern(one["direction"], one["client"], one["machine"], one["product"]))
    found: dict[tuple[str, ...], dict[str, list[Any]]] = {}
    for r in rows:
        key = parse_series(r.name)
        if key is not None and all(not v or getattr(key, k) in v for k, v in want.items()):
            found.setdefault(tuple(getattr(key, d) for d in groups), {}).setdefault(key.metric, []).append(r)
    answer: dict[str, Any] = {
        "start": iso(t0), "end": iso(t1), "step": step_s, "by": groups,
        "filters": {("type" if k == "direction" else k): v for k, v in want.items() if v}, "rows": [],
    }
    # A group whose series one glob names exactly (every merged dimension has at most one
    # value asked) is read by the rollup in one call per metric; a union of several values
    # is merged here from each series' buckets.
    globbable = all(len(want[d]) <= 1 for d in DIMENSIONS if d not in groups)
    for g in sorted(found):
        labels = dict(zip(groups, g))
        if globbable:
            fixed = {d: labels.get(d) or one[d] for d in DIMENSIONS}
            answer["rows"] += _rows_by_glob(series, labels, fixed, found[g], t0, t1, step_s, now)
        else:
            answer["rows"] += _rows_by_buckets(series, labels, found[g], t0, t1, step_s, now)
    return answer


_SUMS = (("bytes", "bytes"), ("errors", "errors"), ("duplicates", "duplicates"), ("over_max", "over_max"))
_LATENCY_COLUMNS = (("latency_min", "min"), ("latency_mean", "mean"), ("latency_median", "p50"),
                    ("latency_p95", "p95"), ("latency_max", "max"))


def _empty_row() -> dict[str, Any]:
    return {c: (0 if c in ("files", "bytes", "errors", "duplicates", "over_max") else None) for c in COLUMNS}


def _number(v: Any) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _rows_by_glob(series: Any, labels: dict[str, str], fixed: dict[str, str | None], metrics: dict[str, list[Any]],
                  t0: float, t1: float, step: int | None, now: float) -> list[dict[str, Any]]:
    per_time: dict[float, dict[str, Any]] = {}
    width = 0.0
    for metric in metrics:
        stats = _LATENCY_STATS if metric == "latency" else ("sum",)
        glob = pattern(fixed["direction"], fixed["client"], fixed["machine"], fixed["product"], metric)
        ans = series.series(glob, t0, t1, step=step or 0, stats=stats, agg="merge", now=now)
        width = ans.step or (t1 - t0)
        for point in ans.series[0].points if ans.series else []:
            row = per_time.setdefault(point["t"], _empty_row())
            if metric == "latency":
                row["files"] = int(point.get("count") or 0)
                for col, stat in _LATENCY_COLUMNS:
                    v = _number(point.get(stat))
                    row[col] = None if v is None else round(v, 6)
            else:
                row[metric] = int(round(_number(point.get("sum")) or 0))
    out = []
    for t in sorted(per_time):
        if step is None:
            a, b = t0, t1
        else:
            a, b = t, min(t + width, t1)
        out.append({**labels, "start": iso(a), "end": iso(b), **per_time[t]})
    return [r for r in out if any(r[c] for c in ("files", "bytes", "errors", "duplicates", "over_max"))]


def _rows_by_buckets(series: Any, labels: dict[str, str], metrics: dict[str, list[Any]], t0: float, t1: float,
                     step: int | None, now: float) -> list[dict[str, Any]]:
    first = next(iter(metrics.values()))[0]
    tier, step = _tier(first.policy, t0, t1, step, now)
    lo = math.floor(t0 / tier.step) * tier.step
    hi = math.ceil(t1 / tier.step) * tier.step
    parts = {m: [series.buckets(r.name, tier.step, lo, hi) if r.policy.tier(tier.step) else BucketArrays.empty()
                 for r in rs] for m, rs in metrics.items()}
    return _rows(labels, parts, step, lo, hi)


def _merged(parts: list[BucketArrays], step: int | None, lo: int) -> BucketArrays:
    arr = concat_arrays(parts)
    if len(arr) == 0:
        return arr
    zeros = np.zeros(len(arr), np.int64)
    if step is None:
        return merge_rows(arr, zeros, np.full(len(arr), lo, np.int64))
    return rebucket(arr, step, group=zeros)


def _rows(labels: dict[str, str], metrics: dict[str, list[BucketArrays]], step: int | None, lo: int,
          hi: int) -> list[dict[str, Any]]:
    per_time: dict[int, dict[str, Any]] = {}

    def at(t: int) -> dict[str, Any]:
        return per_time.setdefault(t, _empty_row())

    lat = _merged(metrics.get("latency", []), step, lo)
    if len(lat):
        s = compute_stats(lat, _LATENCY_STATS)
        for i, t in enumerate(lat.start.tolist()):
            row = at(t)
            row["files"] = int(s["count"][i])
            for col, stat in _LATENCY_COLUMNS:
                v = float(s[stat][i])
                row[col] = round(v, 6) if math.isfinite(v) else None
    for metric, col in _SUMS:
        arr = _merged(metrics.get(metric, []), step, lo)
        if len(arr):
            sums = compute_stats(arr, ("sum",))["sum"]
            for i, t in enumerate(arr.start.tolist()):
                at(t)[col] = int(round(float(sums[i])))
    out = []
    for t in sorted(per_time):
        end = hi if step is None else t + step
        out.append({**labels, "start": iso(t), "end": iso(min(end, hi)), **per_time[t]})
    return out
