"""Retention policies (which tiers a series keeps, for how long) and the tier a query reads.

A policy reads like whisper's storage-schemas retentions, with raw samples first:
``raw:48h,1m:14d,1h:2y,1d:10y`` keeps raw samples 48 hours, 1-minute buckets 14 days,
1-hour buckets 2 years, 1-day buckets 10 years (the default).  A tier may ask for a coarser
sketch accuracy with ``@alpha``: ``1d:10y@0.02``.  Policies are given per series-name glob
pattern, first match wins, ``*`` last.  Pure functions; time-dependent ones take ``now``.
"""

from __future__ import annotations

import fnmatch
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from telmon.errors import InvalidTime
from telmon.rollup import sketch as sk
from telmon.rollup.errors import BadPolicy
from telmon.timeutil import parse_span

DEFAULT_SPEC = "raw:48h,1m:14d,1h:2y,1d:10y"
MAX_TIERS = 8
_UNITS = (("y", 31536000), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_span(seconds: float) -> str:
    """Seconds -> the largest whole unit: 172800 -> '2d', 5400 -> '90m', 60 -> '1m'."""
    if seconds == int(seconds):
        s = int(seconds)
        for unit, size in _UNITS:
            if s % size == 0 and s >= size:
                return f"{s // size}{unit}"
    return f"{seconds:g}s"


def block_buckets(step: int) -> int:
    """How many buckets of a tier share one stored block.  A function of the step alone, so a
    policy change never re-blocks a tier that keeps its step.  Sub-minute steps: an hour per
    block; up to 1 h: 60 buckets; hours: 24; days and beyond: 30."""
    if step < 60:
        return 3600 // step if 3600 % step == 0 else 60
    if step < 3600:
        return 60
    if step < 86400:
        return 24
    return 30


@dataclass(frozen=True, slots=True)
class Tier:
    step: int  # seconds per bucket; buckets are aligned on multiples of it since the epoch
    retention: float  # seconds a bucket is kept after its end
    alpha: float = sk.DEFAULT_ALPHA

    @property
    def block_span(self) -> int:
        return self.step * block_buckets(self.step)

    def cutoff(self, now: float) -> float:
        """Buckets ending at or before this are pruned; samples before it skip this tier."""
        return now - self.retention

    @property
    def spec(self) -> str:
        text = f"{format_span(self.step)}:{format_span(self.retention)}"
        return text if self.alpha == sk.DEFAULT_ALPHA else f"{text}@{self.alpha:g}"


@dataclass(frozen=True, slots=True)
class Policy:
    raw_retention: float
    tiers: tuple[Tier, ...]
    spec: str = field(init=False, compare=False)  # canonical text: equal policies, equal specs

    def __post_init__(self) -> None:
        # computed once: writes compare specs of every series they touch
        object.__setattr__(self, "spec", ",".join([f"raw:{format_span(self.raw_retention)}", *(t.spec for t in self.tiers)]))

    @property
    def max_retention(self) -> float:
        return max([self.raw_retention, *(t.retention for t in self.tiers)])

    def tier(self, step: int) -> Tier | None:
        return next((t for t in self.tiers if t.step == step), None)

    def oldest_accepted(self, now: float) -> float:
        """Samples older than this are outside every tier and are refused."""
        return now - self.max_retention


@functools.lru_cache(maxsize=256)
def parse_policy(text: str) -> Policy:
    """Read ``raw:48h,1m:14d,1h:2y,1d:10y`` (steps ascending, each dividing the next).
    Raises BadPolicy saying what is wrong."""
    raw: float | None = None
    tiers: list[Tier] = []
    for item in (p.strip() for p in str(text).split(",")):
        if not item:
            continue
        head, sep, rest = item.partition(":")
        if not sep:
            raise BadPolicy(text, f"{item!r} is not STEP:RETENTION")
        retention_text, _, alpha_text = rest.partition("@")
        try:
            retention = parse_span(retention_text)
        except InvalidTime:
            raise BadPolicy(text, f"cannot read retention {retention_text!r}") from None
        if head.strip().lower() == "raw":
            if alpha_text:
                raise BadPolicy(text, "raw samples have no sketch accuracy")
            raw = retention
            continue
        try:
            step_f = parse_span(head)
        except InvalidTime:
            raise BadPolicy(text, f"cannot read step {head!r}") from None
        if step_f != int(step_f) or step_f < 1:
            raise BadPolicy(text, f"step {head!r} must be a whole number of seconds")
        alpha = sk.DEFAULT_ALPHA
        if alpha_text:
            try:
                alpha = float(alpha_text)
                sk.check_alpha(alpha)
            except ValueError as exc:
                raise BadPolicy(text, str(exc)) from None
        if retention < step_f:
            raise BadPolicy(text, f"tier {item!r} keeps less than one bucket")
        tiers.append(Tier(int(step_f), retention, alpha))
    if raw is None:
        raise BadPolicy(text, "say how long raw samples are kept, e.g. raw:48h")
    if not tiers:
        raise BadPolicy(text, "give at least one tier, e.g. 1m:14d")
    if len(tiers) > MAX_TIERS:
        raise BadPolicy(text, f"at most {MAX_TIERS} tiers")
    tiers.sort(key=lambda t: t.step)
    for finer, coarser in zip(tiers, tiers[1:]):
        if coarser.step == finer.step:
            raise BadPolicy(text, f"step {format_span(finer.step)} appears twice")
        if coarser.step % finer.step:
            raise BadPolicy(text, f"step {format_span(coarser.step)} is not a multiple of {format_span(finer.step)}")
    return Policy(raw, tuple(tiers))


DEFAULT_POLICY = parse_policy(DEFAULT_SPEC)


def check_pattern(pattern: str) -> str:
    pattern = pattern.strip()
    if not pattern or len(pattern) > 200:
        raise BadPolicy(pattern, "a series pattern is 1-200 characters")
    return pattern


def resolve(name: str, rules: Sequence[tuple[str, Policy]], default: Policy = DEFAULT_POLICY) -> Policy:
    """The policy of the first rule whose glob pattern matches the series name."""
    for pattern, policy in rules:
        if fnmatch.fnmatchcase(name, pattern):
            return policy
    return default


@dataclass(frozen=True, slots=True)
class TierChoice:
    tier: int  # step of the bucket tier read; 0 means raw samples
    step: int  # step of the points returned
    covered: bool  # False when no tier keeps data back to the start asked


def choose_tier(policy: Policy, start: float, end: float, now: float, step: int | None = None) -> TierChoice:
    """Which stored tier answers [start, end) at ``step`` (None: the tier's own step).

    The finest tier whose retention reaches back to ``start`` decides the step when none is
    given.  With a step, any covering tier whose step divides it gives the same numbers
    (merging is exact), so the coarsest such tier with the finest tier's accuracy is read:
    fewer buckets.  A step no covering tier divides is served from raw samples when they
    reach back far enough, else rounded up to a multiple of the finest covering tier.
    When nothing reaches back to ``start``, the tier with the longest retention answers."""
    covering = [t for t in policy.tiers if start >= t.cutoff(now)]
    fallback = max(policy.tiers, key=lambda t: (t.retention, -t.step))
    raw_covers = start >= now - policy.raw_retention
    if step is None:
        if not covering and raw_covers:
            # raw samples kept longer than any tier (e.g. raw:30d,1m:1d): buckets from raw
            return TierChoice(0, policy.tiers[0].step, True)
        t = covering[0] if covering else fallback
        return TierChoice(t.step, t.step, bool(covering))
    step = int(step)
    if step < 1:
        raise ValueError("step must be at least 1 second")
    dividing = [t for t in covering if step % t.step == 0 and t.alpha <= covering[0].alpha]
    if dividing:
        return TierChoice(dividing[-1].step, step, True)
    if raw_covers:
        return TierChoice(0, step, True)
    t = covering[0] if covering else fallback
    return TierChoice(t.step, math.ceil(step / t.step) * t.step, bool(covering))
