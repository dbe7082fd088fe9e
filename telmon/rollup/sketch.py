"""Mergeable quantile sketches with a relative-accuracy guarantee (DDSketch's log mapping), in numpy.

A value x > 0 falls in bin ``k = ceil(log_gamma(x))`` with ``gamma = (1 + alpha) / (1 - alpha)``;
the bin's representative ``2 gamma^k / (gamma + 1)`` is within ``alpha`` (relative) of every value
in the bin.  Negative values use a second store on |x|; zeros (and subnormals, |x| < 2.2e-308)
are counted apart.  Bins are sparse: only non-empty ones exist.  Counts add, so merging
sketches (minutes into hours, machines into a total) is exact: the merged sketch is the sketch
of the union.  Reference: Masson, Rim, Lee, "DDSketch", VLDB 2019.

Rank rule: ``quantile(q)`` returns the representative of the bin holding the sorted value of
0-based rank ``floor(q * (n - 1))`` (numpy's ``method="lower"``), so it is within ``alpha`` of
``np.quantile(x, q, method="lower")``.

Many sketches are handled at once as :class:`Entries` (one row per non-empty bin, with the
owning sketch's number), which is how buckets of a thousand series are built and merged
without a Python loop per sketch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from telmon.rollup import varint

DEFAULT_ALPHA = 0.01
MIN_ALPHA = 0.0005
MAX_ALPHA = 0.5
NEG, ZERO, POS = 0, 1, 2
# Below this magnitude log() loses precision: subnormals are counted as zero.
MIN_INDEXABLE = float(np.finfo(np.float64).tiny)

# Entries are ordered by one int64 composite: owner | sign | key in value order.
# |key| < 2**21 for every alpha >= MIN_ALPHA over the whole float range.
_ORD_BIAS = 1 << 21
_SIGN_SHIFT = 22
_OWNER_SHIFT = 24
_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Mapping:
    """The value <-> bin mapping for one relative accuracy."""

    alpha: float
    gamma: float
    log_gamma: float

    def keys(self, magnitudes: np.ndarray) -> np.ndarray:
        """Bin keys of positive magnitudes (>= MIN_INDEXABLE)."""
        return np.ceil(np.log(magnitudes) / self.log_gamma).astype(np.int64)

    def values(self, keys: np.ndarray) -> np.ndarray:
        """Representative value of each bin."""
        with np.errstate(over="ignore"):
            v = np.exp(np.asarray(keys, dtype=np.float64) * self.log_gamma) * (2.0 / (self.gamma + 1.0))
        return np.minimum(v, np.finfo(np.float64).max)


@functools.lru_cache(maxsize=32)
def mapping(alpha: float) -> Mapping:
    check_alpha(alpha)
    gamma = (1.0 + alpha) / (1.0 - alpha)
    return Mapping(alpha, gamma, math.log(gamma))


def check_alpha(alpha: float) -> None:
    if not (MIN_ALPHA <= alpha <= MAX_ALPHA):
        raise ValueError(f"sketch relative accuracy must be within [{MIN_ALPHA}, {MAX_ALPHA}], got {alpha}")
    if abs(alpha * 1e6 - round(alpha * 1e6)) > 1e-6:
        raise ValueError(f"sketch relative accuracy must be a multiple of 1e-6, got {alpha}")


@dataclass(frozen=True, slots=True)
class Entries:
    """Non-empty bins of many sketches: sketch ``owner[i]`` holds ``count[i]`` values in bin
    ``(sign[i], key[i])``.  Normalised entries are sorted by owner then value and unique."""

    owner: np.ndarray  # int64
    sign: np.ndarray  # int64: NEG, ZERO or POS
    key: np.ndarray  # int64 (0 for ZERO)
    count: np.ndarray  # int64; negative only in removal deltas

    def __len__(self) -> int:
        return len(self.owner)

    @staticmethod
    def empty() -> Entries:
        z = np.zeros(0, dtype=np.int64)
        return Entries(z, z, z, z)

    def take(self, index: np.ndarray) -> Entries:
        return Entries(self.owner[index], self.sign[index], self.key[index], self.count[index])

    def with_owner(self, owner: np.ndarray) -> Entries:
        return Entries(np.asarray(owner, dtype=np.int64), self.sign, self.key, self.count)

    def negated(self) -> Entries:
        return Entries(self.owner, self.sign, self.key, -self.count)


def _composite(owner: np.ndarray, sign: np.ndarray, key: np.ndarray) -> np.ndarray:
    order = np.where(sign == NEG, -key, key)
    return (owner << _OWNER_SHIFT) | (sign << _SIGN_SHIFT) | (order + _ORD_BIAS)


def _split(composite: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    owner = composite >> _OWNER_SHIFT
    sign = (composite >> _SIGN_SHIFT) & 3
    order = (composite & ((1 << _SIGN_SHIFT) - 1)) - _ORD_BIAS
    return owner, sign, np.where(sign == NEG, -order, order)


def normalise(entries: Entries, *, keep_negative: bool = False) -> Entries:
    """Sort by (owner, value), add up repeated bins, drop empty ones (and, unless
    ``keep_negative``, bins whose net count is negative: more removed than known)."""
    if len(entries) == 0:
        return Entries.empty()
    comp = _composite(entries.owner, entries.sign, entries.key)
    if np.all(comp[1:] > comp[:-1]):
        # already sorted and unique (decoded blocks, merged rows): only drop empty bins
        keep = entries.count != 0 if keep_negative else entries.count > 0
        return entries if keep.all() else entries.take(np.flatnonzero(keep))
    lo = int(comp.min())
    span = int(comp.max()) - lo + 1
    if span <= 4 * len(comp) + 4096:
        # few owners over few bins (many sketches merged into one): count, do not sort
        summed = np.bincount(comp - lo, weights=entries.count, minlength=span)
        at = np.flatnonzero(summed != 0 if keep_negative else summed > 0)
        owner, sign, key = _split(at + lo)
        return Entries(owner, sign, key, np.rint(summed[at]).astype(np.int64))
    # bins are summed, so the order among equal composites does not matter: no stable sort
    order = np.argsort(comp)
    comp = comp[order]
    count = entries.count[order]
    starts = np.flatnonzero(np.r_[True, comp[1:] != comp[:-1]])
    summed = np.add.reduceat(count, starts)
    keep = summed != 0 if keep_negative else summed > 0
    owner, sign, key = _split(comp[starts[keep]])
    return Entries(owner, sign, key, summed[keep])


def concat(parts: Iterable[Entries]) -> Entries:
    parts = [p for p in parts if len(p)]
    if not parts:
        return Entries.empty()
    return Entries(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("owner", "sign", "key", "count")))


def from_values(owner: np.ndarray, values: np.ndarray, alpha: float = DEFAULT_ALPHA) -> Entries:
    """Sketch entries of ``values[i]`` belonging to sketch ``owner[i]`` (finite values only)."""
    values = np.asarray(values, dtype=np.float64)
    owner = np.asarray(owner, dtype=np.int64)
    mag = np.abs(values)
    indexable = mag >= MIN_INDEXABLE
    sign = np.where(indexable, np.where(values > 0, POS, NEG), ZERO).astype(np.int64)
    key = np.zeros(len(values), dtype=np.int64)
    key[indexable] = mapping(alpha).keys(mag[indexable])
    n = len(values)
    if n and np.all(owner[1:] >= owner[:-1]):
        dense = _histogram(owner, sign, key)
        if dense is not None:
            return dense
    return normalise(Entries(owner, sign, key, np.ones(n, dtype=np.int64)))


def _histogram(owner: np.ndarray, sign: np.ndarray, key: np.ndarray) -> Entries | None:
    """Counting by bincount over each owner's span of bins (owners sorted): several times
    faster than sorting when an owner's values span few bins, as telemetry values do."""
    n = len(owner)
    local = _composite(np.zeros(n, np.int64), sign, key)
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    lo = np.minimum.reduceat(local, starts)
    width = np.maximum.reduceat(local, starts) - lo + 1
    total = int(width.sum())
    if total > 4 * n + 4096:
        return None
    offset = np.cumsum(width) - width
    seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    counts = np.bincount(offset[seg] + local - lo[seg], minlength=total)
    nz = np.flatnonzero(counts)
    group = np.searchsorted(offset, nz, side="right") - 1
    _, s, k = _split(nz - offset[group] + lo[group])
    return Entries(owner[starts][group], s, k, counts[nz].astype(np.int64))


def owner_totals(entries: Entries, n_owners: int) -> np.ndarray:
    """Net count per owner (exact integers)."""
    out = np.zeros(n_owners, dtype=np.int64)
    np.add.at(out, entries.owner, entries.count)
    return out


def quantiles(entries: Entries, n_owners: int, qs: Sequence[float], alpha: float) -> np.ndarray:
    """Quantile estimates, shape (n_owners, len(qs)); NaN for an empty sketch.

    ``entries`` must be normalised; bins with a non-positive count are ignored."""
    qs_arr = np.asarray(qs, dtype=np.float64)
    if np.any((qs_arr < 0) | (qs_arr > 1)):
        raise ValueError("quantiles must be within [0, 1]")
    out = np.full((n_owners, len(qs_arr)), np.nan)
    if entries.count.size and entries.count.min() <= 0:
        entries = entries.take(np.flatnonzero(entries.count > 0))
    if len(entries) == 0 or n_owners == 0:
        return out
    cum = np.cumsum(entries.count)
    first = np.searchsorted(entries.owner, np.arange(n_owners), side="left")
    last = np.searchsorted(entries.owner, np.arange(n_owners), side="right")
    has = last > first
    totals = np.zeros(n_owners, dtype=np.int64)
    totals[has] = cum[last[has] - 1] - (cum[first[has]] - entries.count[first[has]])
    base = np.zeros(n_owners, dtype=np.int64)
    base[has] = cum[first[has]] - entries.count[first[has]]
    owners = np.flatnonzero(has)
    m = mapping(alpha)
    for j, q in enumerate(qs_arr.tolist()):
        rank = np.floor(q * (totals[owners] - 1)).astype(np.int64)
        pos = np.searchsorted(cum, base[owners] + rank, side="right")
        sign = entries.sign[pos]
        mag = m.values(entries.key[pos])
        out[owners, j] = np.where(sign == POS, mag, np.where(sign == NEG, -mag, 0.0))
    return out


def convert(entries: Entries, from_alpha: float, to_alpha: float) -> Entries:
    """Re-bin sketches to another accuracy.  Each value is then known within
    ``(1 + from_alpha) * (1 + to_alpha) - 1`` (the two errors compound)."""
    if from_alpha == to_alpha or len(entries) == 0:
        return entries
    reps = mapping(from_alpha).values(entries.key)
    new_keys = np.where(entries.sign == ZERO, 0, mapping(to_alpha).keys(np.maximum(reps, MIN_INDEXABLE)))
    return normalise(Entries(entries.owner, entries.sign, new_keys, entries.count), keep_negative=True)


class QuantileSketch:
    """One sketch: add values, merge sketches, ask quantiles, serialise to bytes."""

    __slots__ = ("alpha", "_entries")

    def __init__(self, alpha: float = DEFAULT_ALPHA, entries: Entries | None = None) -> None:
        mapping(alpha)  # validates
        self.alpha = alpha
        self._entries = Entries.empty() if entries is None else normalise(entries.with_owner(np.zeros(len(entries), np.int64)))

    @classmethod
    def from_values(cls, values: Iterable[float] | np.ndarray, alpha: float = DEFAULT_ALPHA) -> QuantileSketch:
        sk = cls(alpha)
        sk.add(values)
        return sk

    @property
    def entries(self) -> Entries:
        return self._entries

    @property
    def count(self) -> int:
        return int(self._entries.count.sum())

    def add(self, values: Iterable[float] | np.ndarray) -> None:
        """Add finite values (vectorised); raises ValueError on NaN or infinity."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        if not np.isfinite(arr).all():
            raise ValueError("a sketch only takes finite values")
        new = from_values(np.zeros(len(arr), np.int64), arr, self.alpha)
        self._entries = normalise(concat([self._entries, new]))

    def merge(self, other: QuantileSketch) -> None:
        """Add another sketch's counts into this one (same alpha required)."""
        if other.alpha != self.alpha:
            raise ValueError(f"cannot merge sketches of alpha {other.alpha} into {self.alpha}: convert first")
        self._entries = normalise(concat([self._entries, other._entries]))

    @classmethod
    def merged(cls, sketches: Sequence[QuantileSketch]) -> QuantileSketch:
        if not sketches:
            return cls()
        alpha = sketches[0].alpha
        if any(s.alpha != alpha for s in sketches):
            raise ValueError("cannot merge sketches of different alpha: convert first")
        return cls(alpha, concat([s._entries for s in sketches]))

    def converted(self, alpha: float) -> QuantileSketch:
        return QuantileSketch(alpha, convert(self._entries, self.alpha, alpha))

    def quantile(self, q: float) -> float:
        return float(self.quantiles([q])[0])

    def quantiles(self, qs: Sequence[float]) -> np.ndarray:
        return quantiles(self._entries, 1, qs, self.alpha)[0]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented
        a, b = self._entries, other._entries
        return self.alpha == other.alpha and all(
            np.array_equal(getattr(a, f), getattr(b, f)) for f in ("sign", "key", "count")
        )

    def __repr__(self) -> str:
        return f"QuantileSketch(alpha={self.alpha}, count={self.count}, bins={len(self._entries)})"

    # --- bytes: version, alpha in millionths, n_neg, zeros, n_pos, then per store the key
    # deltas (zigzag) and the counts, all as LEB128 varints.  ~2 bytes per non-empty bin.
    def to_bytes(self) -> bytes:
        e = self._entries
        if e.count.size and e.count.min() < 0:
            raise ValueError("cannot serialise a sketch with negative counts")
        neg, pos = e.sign == NEG, e.sign == POS
        zeros = int(e.count[e.sign == ZERO].sum())
        head = np.array([_FORMAT_VERSION, round(self.alpha * 1e6), int(neg.sum()), zeros, int(pos.sum())], dtype=np.uint64)
        body = []
        for mask in (neg, pos):
            keys = e.key[mask]
            deltas = np.diff(keys, prepend=0)
            body += [varint.zigzag(deltas), e.count[mask].astype(np.uint64)]
        buf, _ = varint.encode_varints(np.concatenate([head, *body]))
        return buf.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> QuantileSketch:
        try:
            v = varint.decode_varints(data)
        except ValueError as exc:
            raise ValueError(f"corrupt sketch: {exc}") from None
        if len(v) < 5 or int(v[0]) != _FORMAT_VERSION:
            raise ValueError("corrupt sketch: bad header")
        alpha = int(v[1]) / 1e6
        n_neg, zeros, n_pos = int(v[2]), int(v[3]), int(v[4])
        if len(v) != 5 + 2 * n_neg + 2 * n_pos:
            raise ValueError("corrupt sketch: length does not match header")
        at = 5
        keys, counts, signs = [], [], []
        for n, sign in ((n_neg, NEG), (n_pos, POS)):
            keys.append(np.cumsum(varint.unzigzag(v[at:at + n])))
            counts.append(v[at + n:at + 2 * n].astype(np.int64))
            signs.append(np.full(n, sign, dtype=np.int64))
            at += 2 * n
        if zeros:
            keys.append(np.zeros(1, np.int64))
            counts.append(np.array([zeros], np.int64))
            signs.append(np.array([ZERO], np.int64))
        key, count, sign = (np.concatenate(x) for x in (keys, counts, signs))
        return cls(alpha, Entries(np.zeros(len(key), np.int64), sign, key, count))
