"""Gap maths as plain functions: a gap is a spacing between consecutive time entries larger
than the station's expected interval (with a tolerance for jitter).

The store keeps a gap table current with these as entries arrive; nothing here touches a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median

DEFAULT_TOLERANCE = 0.5  # a spacing > interval * 1.5 is a gap: GOES messages jitter by seconds


def is_gap(spacing: float, interval: float, tolerance: float = DEFAULT_TOLERANCE) -> bool:
    return interval > 0 and spacing > interval * (1.0 + tolerance)


def missing_count(spacing: float, interval: float) -> int:
    """How many expected entries are absent in a spacing: 3 h at 1 h -> 2 missing."""
    if interval <= 0:
        return 0
    return max(1, round(spacing / interval) - 1)


def find_gaps(
    times: Sequence[float], interval: float | None, tolerance: float = DEFAULT_TOLERANCE
) -> list[tuple[float, float, int]]:
    """(start, end, missing) for each gap between consecutive sorted ``times``."""
    if not interval or interval <= 0 or len(times) < 2:
        return []
    limit = interval * (1.0 + tolerance)
    gaps = []
    prev = times[0]
    for t in times[1:]:
        spacing = t - prev
        if spacing > limit:
            gaps.append((prev, t, missing_count(spacing, interval)))
        prev = t
    return gaps


def infer_interval(times: Sequence[float]) -> float | None:
    """The median spacing of sorted ``times`` (ignoring zero spacings), or None if < 2 distinct times.

    A median, not a mean: a few long outages must not stretch the expected interval.
    """
    spacings = [b - a for a, b in zip(times, times[1:]) if b > a]
    if not spacings:
        return None
    return float(median(spacings))


def trailing_gap(
    last_entry: float | None, end: float, interval: float | None, tolerance: float = DEFAULT_TOLERANCE
) -> tuple[float, float, int] | None:
    """The open gap from a station's last entry to ``end`` (no entry has come since), if any."""
    if last_entry is None or not interval or end <= last_entry:
        return None
    spacing = end - last_entry
    if spacing <= interval * (1.0 + tolerance):
        return None
    return (last_entry, end, max(1, int(spacing // interval)))
