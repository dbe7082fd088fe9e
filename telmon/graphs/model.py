"""What a graph shows, independent of how it is drawn: a Chart of Panels of Lines on a time grid.

The same Chart feeds the PNG renderer (matplotlib) and the dashboard's uPlot charts (JSON), so
a number on a page and the same number on a PNG come from one read.  Pure data and maths: no
store, no clock (spans take ``now``).

Gaps: every line lives on the full grid of steps of its span, with NaN where nothing was
recorded, so a renderer draws a gap there and never a zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from telmon.errors import BadRequest
from telmon.timeutil import iso, parse_span, parse_time

# Named spans of the dashboard's buttons and of the MetPX day/week/month/year pages.
SPANS = {"day": 86400, "week": 7 * 86400, "month": 30 * 86400, "year": 365 * 86400}
# Steps a graph may use, each a whole number of the tiers' steps (1 min, 1 h, 1 d by default).
NICE_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
# About one point per pixel of a 1,000-px plot keeps spikes visible without wasting work.
MAX_POINTS = 1500
MAX_SPAN = 10 * 365 * 86400


@dataclass(frozen=True, slots=True)
class Span:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def parse_graph_span(span: object = None, start: object = None, end: object = None, *, now: float,
                     default: str = "24h") -> Span:
    """[start, end) from ``start``/``end`` (ISO 8601 or epoch) or ``span`` back from ``end``
    (default: now).  ``span``: '24h', '7d', 'day', 'week', 'month', 'year'.  Raises BadRequest."""
    t_end = now if end in (None, "", "now") else parse_time(end, field="end")
    if start not in (None, ""):
        t_start = parse_time(start, field="start")
    else:
        text = str(span).strip().lower() if span not in (None, "") else default
        try:
            seconds = float(SPANS[text]) if text in SPANS else parse_span(text)
        except BadRequest:
            raise BadRequest(f"span must be like 24h, 7d, day, week, month or year, not {span!r}", field="span") from None
        t_start = t_end - seconds
    if t_end <= t_start:
        raise BadRequest("end must come after start", field="end")
    if t_end - t_start > MAX_SPAN:
        raise BadRequest("a graph spans at most 10 years", field="span")
    return Span(t_start, t_end)


def pick_step(tier_step: int, seconds: float, max_points: int = MAX_POINTS) -> int:
    """The finest step, a whole multiple of ``tier_step``, giving at most ``max_points`` points."""
    tier_step = max(1, int(tier_step))
    for s in NICE_STEPS:
        if s >= tier_step and s % tier_step == 0 and seconds / s <= max_points:
            return s
    return tier_step * max(1, math.ceil(seconds / tier_step / max_points))


def grid(start: float, end: float, step: int) -> np.ndarray:
    """Step starts (aligned on the epoch, like the rollup buckets) covering [start, end)."""
    t0 = math.floor(start / step) * step
    n = max(1, math.ceil((end - t0) / step))
    return t0 + step * np.arange(n, dtype=np.float64)


def on_grid(times: np.ndarray, step_starts: np.ndarray, values: np.ndarray, step: int) -> np.ndarray:
    """Values placed on the grid: NaN at every step that has none (a gap, never a zero)."""
    out = np.full(len(step_starts), np.nan)
    if len(times) == 0:
        return out
    idx = np.round((np.asarray(times, np.float64) - step_starts[0]) / step).astype(np.int64)
    ok = (idx >= 0) & (idx < len(out))
    out[idx[ok]] = np.asarray(values, np.float64)[ok]
    return out


def close_short_runs(covered: np.ndarray, shortest: int) -> np.ndarray:
    """``covered`` with every run of uncovered steps shorter than ``shortest`` marked covered:
    a quiet minute between busy ones is a zero, a long silence stays a gap."""
    out = np.asarray(covered, bool).copy()
    if shortest <= 1 or out.all() or not out.any():
        return out
    edges = np.diff(np.r_[0, (~out).astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    for a, b in zip(starts.tolist(), ends.tolist()):
        if b - a < shortest:
            out[a:b] = True
    return out


@dataclass(slots=True)
class Summary:
    """MAX / MEAN / MIN (and median, p95) of a panel over the whole span; ``over`` says of what:
    'samples' (every sample in the span, quantiles from merged sketches) or 'steps' (the plotted
    per-step values, e.g. files per minute)."""

    max: float | None
    mean: float | None
    min: float | None
    median: float | None = None
    p95: float | None = None
    count: int | None = None
    over: str = "samples"

    @staticmethod
    def of_steps(values: np.ndarray) -> Summary | None:
        v = np.asarray(values, np.float64)
        v = v[np.isfinite(v)]
        if len(v) == 0:
            return None
        med, p95 = np.quantile(v, [0.5, 0.95], method="lower")
        return Summary(float(v.max()), float(v.mean()), float(v.min()), float(med), float(p95), len(v), "steps")

    def to_json(self) -> dict[str, Any]:
        return {k: _finite(getattr(self, k)) for k in ("max", "mean", "min", "median", "p95", "count", "over")}


@dataclass(slots=True)
class Line:
    label: str
    values: np.ndarray  # on the chart's grid, NaN where nothing was recorded
    kind: str = "line"  # "line" | "bars" (per-step counts) | "band" (a min-max envelope, with ``low``)
    low: np.ndarray | None = None  # lower edge of a band
    summary: Summary | None = None  # this line's own figures (legend) when a panel has several
    faint: bool = False  # a secondary line (e.g. max beside the mean)


@dataclass(slots=True)
class Panel:
    key: str  # stable id: "latency", "files", "param:HG", "cpu.total"
    title: str
    unit: str = ""
    lines: list[Line] = field(default_factory=list)
    summary: Summary | None = None
    bands: list[tuple[float, float]] = field(default_factory=list)  # shaded spans (known gaps)
    percent: bool = False
    summary_of: str | None = None  # the line the summary describes, when the panel has several

    @property
    def empty(self) -> bool:
        return all(not np.isfinite(ln.values).any() for ln in self.lines)


@dataclass(slots=True)
class Chart:
    """One image (or one page section): panels sharing a time axis."""

    kind: str  # "series" | "client" | "host" | "station"
    subject: str  # what it is about: a series pattern, "tx amis", a host, a station code
    title: str
    start: float
    end: float
    step: int
    tier: int  # step of the rollup tier read (0: raw samples or the core tables)
    times: np.ndarray  # step starts
    panels: list[Panel] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return all(p.empty for p in self.panels)

    def to_json(self) -> dict[str, Any]:
        """uPlot-ready: one shared ``t`` array (epoch seconds) and per panel its lines' values
        with null at gaps."""
        return {
            "kind": self.kind, "subject": self.subject, "title": self.title,
            "start": iso(self.start), "end": iso(self.end), "start_t": self.start, "end_t": self.end,
            "step": self.step, "tier": self.tier, "notes": self.notes, "empty": self.empty,
            "t": self.times.tolist(),
            "panels": [
                {"key": p.key, "title": p.title, "unit": p.unit, "percent": p.percent,
                 "summary": p.summary.to_json() if p.summary else None, "summary_of": p.summary_of,
                 "bands": [[a, b] for a, b in p.bands],
                 "lines": [{"label": ln.label, "kind": ln.kind, "faint": ln.faint, "values": _nulls(ln.values),
                            "low": _nulls(ln.low) if ln.low is not None else None,
                            "summary": ln.summary.to_json() if ln.summary else None} for ln in p.lines]}
                for p in self.panels
            ],
        }


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _nulls(values: np.ndarray) -> list[float | None]:
    """NaN -> null (uPlot draws a gap there); values rounded to 6 significant digits (the
    sketches are 1% accurate: more digits only fatten the JSON)."""
    v = np.asarray(values, np.float64)
    out: list[float | None] = [float(f"{x:.6g}") for x in v.tolist()]
    for i in np.flatnonzero(~np.isfinite(v)).tolist():
        out[i] = None
    return out


def span_label(seconds: float) -> str:
    """86400 -> '24 h', 604800 -> '7 days', 31536000 -> '365 days'."""
    if seconds < 3600 * 48 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds % 86400 == 0:
        return f"{int(seconds // 86400)} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


def step_label(step: int) -> str:
    if step == 0:
        return "raw"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if step % size == 0:
            return f"{step // size} {unit}"
    return f"{step} s"
