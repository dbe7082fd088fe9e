"""What SeriesStore operations return: plain dataclasses with JSON (and CSV) forms."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from telmon.timeutil import iso


@dataclass(slots=True)
class Rejection:
    series: str
    reason: str
    count: int


@dataclass(slots=True)
class WriteResult:
    """One write: how many samples were stored, and why the others were not."""

    batch_id: int | None
    accepted: int = 0
    rejected: int = 0
    replaced: int = 0  # earlier samples of the same (series, time) now superseded
    series_created: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def reasons(self) -> dict[str, int]:
        """Rejected samples per reason."""
        out: dict[str, int] = {}
        for r in self.rejections:
            out[r.reason] = out.get(r.reason, 0) + r.count
        return out

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["reasons"] = self.reasons
        return body


@dataclass(slots=True)
class RevertResult:
    batch_id: int
    samples_removed: int  # samples of the batch found in raw storage and taken out
    samples_pruned: int  # samples already pruned from raw: their share stays in the tiers
    buckets_recomputed: int  # buckets rebuilt exactly from raw samples
    buckets_adjusted: int  # buckets beyond raw retention corrected by subtraction (min/max stay bounds)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class PruneResult:
    chunks_deleted: int = 0
    chunks_trimmed: int = 0
    blocks_deleted: int = 0
    blocks_trimmed: int = 0
    blocks_compacted: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class RebuildResult:
    series: int = 0
    buckets: int = 0  # buckets written from raw samples
    skipped_before: float | None = None  # raw samples only reach back to here; older buckets kept

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class ReshapeResult:
    series: int = 0
    tiers_built: int = 0  # (series, step) tiers built anew from raw samples or finer tiers
    tiers_converted: int = 0  # tiers kept but re-binned to a new sketch accuracy
    tiers_dropped: int = 0  # (series, step) tiers no longer in the policy
    buckets_lost: int = 0  # old buckets that no new tier could hold (no dividing step)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass(slots=True)
class SeriesPoints:
    """Points of one series (or of several merged/summed into one)."""

    name: str
    points: list[dict[str, Any]]  # {"t": step start (epoch s), stat: value, ...}
    labels: dict[str, Any] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)  # series merged or summed into this one
    tier: int = 0  # step of the tier read (0: raw samples)


@dataclass(slots=True)
class SeriesAnswer:
    start: float
    end: float
    step: int
    stats: list[str]
    agg: str | None
    series: list[SeriesPoints]
    covered: bool = True  # False when the span reaches back beyond every tier's retention
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "start": iso(self.start), "end": iso(self.end), "step": self.step, "stats": self.stats,
            "agg": self.agg, "covered": self.covered, "notes": self.notes,
            "series": [
                {"name": s.name, "labels": s.labels, "members": s.members, "tier": s.tier,
                 "points": [{"time": iso(p["t"]), **{k: _num(v) for k, v in p.items()}} for p in s.points]}
                for s in self.series
            ],
        }

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["series", "time", *self.stats])
        for s in self.series:
            for p in s.points:
                w.writerow([s.name, iso(p["t"]), *("" if _num(p.get(k)) is None else p[k] for k in self.stats)])
        return buf.getvalue()
