"""Lizmon's summaries (``GET /api/perf/<host>[/<label>]``) answered from the rollups.

Lizmon (sochoa/lizmon, bin/liz-receiver) kept ``summary:by-minute:<label>`` over the last hour
in 60 s slots and ``summary:by-hour:<label>`` over the last day in 3600 s slots.  A slot
counts the samples with ``start < ts <= end``; the first slot starts at ``now - span``
rounded down to the step, slots run while their start is before now, empty slots are left
out and at most the newest 60 are kept.  ``avg`` is rounded to 2 decimals unless whole.

Tier buckets are ``[start, end)``, so they differ from a slot only by samples lying exactly on
a boundary.  A bucket whose first sample sits on its start shows such a sample; only the two
slots beside that boundary are then recomputed from raw samples (shifted by one microsecond
so the tier's own aggregation gives ``(start, end]``).  Everything else comes from the tiers.
Extra fields beside Lizmon's: ``min``, ``max``, ``p95`` (from the same mergeable sketches).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from telmon.rollup.buckets import US, aggregate_arrays, compute_stats
from telmon.rollup.errors import UnknownSeries
from telmon.push.samples import HOST_PREFIX

KINDS = (("by-minute", 3600, 60), ("by-hour", 86400, 3600))
MAX_POINTS = 60  # Lizmon kept the newest 60 points of a summary
_STATS = ["count", "sum", "min", "max", "p95", "first_ts"]


@dataclass(frozen=True, slots=True)
class Slots:
    step: int
    first: int  # start of the oldest slot
    last: int  # start of the newest slot (the one holding now)

    @staticmethod
    def of(span: int, step: int, now: float) -> Slots:
        first = math.floor((now - span) / step) * step
        last = math.ceil(now / step) * step - step  # newest start strictly before now
        return Slots(step, first, max(first, last))

    def starts(self) -> range:
        return range(self.first, self.last + self.step, self.step)


def host_labels(series: Any, host: str, other_hosts: Iterable[str]) -> dict[str, str]:
    """label -> series name of the host's series (``host.<host>.<label>``).  A series of a
    longer registered host name (``host.a.b.*`` when asking for ``a``) is that host's."""
    prefix = f"{HOST_PREFIX}{host}."
    longer = [f"{HOST_PREFIX}{h}." for h in other_hosts if h != host and h.startswith(host + ".")]
    out = {}
    for row in series.list_series(prefix + "*"):
        if any(row.name.startswith(p) for p in longer):
            continue
        out[row.name[len(prefix):]] = row.name
    return out


def summaries(series: Any, labels: dict[str, str], wanted: str | None, *, now: float) -> dict[str, Any]:
    """Lizmon's JSON: ``{"summary:<kind>:<label>": {...}}`` for the labels whose summary key
    contains ``wanted`` (case-insensitive, as Lizmon's README promised); all when None."""
    needle = wanted.lower() if wanted else None
    out: dict[str, Any] = {}
    for kind, span, step in KINDS:
        chosen = {label: name for label, name in labels.items()
                  if needle is None or needle in f"summary:{kind}:{label}".lower()}
        if not chosen:
            continue
        slots = Slots.of(span, step, now)
        for label, name in sorted(chosen.items()):
            points = slot_points(series, name, slots, now=now)
            if not points:
                continue
            points = points[-MAX_POINTS:]
            out[f"summary:{kind}:{label}"] = {
                "averages": points, "start": int(slots.first), "end": int(now), "timeslice-size-sec": step,
                "average-count": len(points),
            }
    return out


def slot_points(series: Any, name: str, slots: Slots, *, now: float) -> list[dict[str, Any]]:
    """Non-empty slots of one series, oldest first, in Lizmon's point shape."""
    step = slots.step
    try:
        answer = series.series(name, slots.first, slots.last + 2 * step, step=step, stats=_STATS, now=now)
    except UnknownSeries:
        return []
    found = answer.series[0] if answer.series else None
    by_start: dict[int, dict[str, float]] = {}
    if found is None or found.tier == 0 or step % found.tier or answer.step != step:
        # no tier lines up with the slots: everything from raw samples
        by_start = _from_raw(series, name, slots.first, slots.last, step)
    else:
        by_start = {int(p["t"]): p for p in found.points if p.get("count")}
        dirty = [t for t, p in by_start.items() if p.get("first_ts") == t]
        touched = sorted({s for b in dirty for s in (b - step, b) if slots.first <= s <= slots.last})
        if touched:
            fixed = _from_raw(series, name, touched[0], touched[-1], step)
            for s in touched:
                by_start.pop(s, None)
                if s in fixed:
                    by_start[s] = fixed[s]
    points = []
    for s in slots.starts():
        p = by_start.get(s)
        if not p or not p.get("count"):
            continue
        avg = p["sum"] / p["count"]
        if not float(avg).is_integer():
            avg = round(avg, 2)
        points.append({"start-sec": s, "end-sec": s + step, "interval-size-sec": step, "avg": avg,
                       "num-samples": int(p["count"]), "min": p["min"], "max": p["max"], "p95": p["p95"]})
    return points


def _from_raw(series: Any, name: str, first: int, last: int, step: int) -> dict[int, dict[str, float]]:
    """Slots ``(s, s + step]`` for s in [first, last] computed from raw samples."""
    ts, values = series.samples(name, first, last + step + 1e-6 * 2)
    ts_us = np.round(np.asarray(ts) * US).astype(np.int64)
    keep = (ts_us > first * US) & (ts_us <= (last + step) * US)
    ts_us, values = ts_us[keep], np.asarray(values)[keep]
    if not len(values):
        return {}
    # one microsecond earlier turns (start, end] into the tier maths' [start, end)
    arr = aggregate_arrays(np.zeros(len(values), np.int64), ts_us - 1, values, step)
    stats = compute_stats(arr, _STATS)
    return {int(s): {k: float(stats[k][i]) for k in _STATS} for i, s in enumerate(arr.start.tolist())}
