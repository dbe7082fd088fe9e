"""Parsed lines -> samples of the transfer series, with keys that never collide.

Per (direction, client, machine, product type) the series are:

* ``latency``: one sample per file transferred (value: seconds).  Its buckets give the
  files count and latency min / mean / median / p95 / max; medians and p95s come from the
  buckets' mergeable sketches, so they stay right across minutes, machines and clients.
* ``bytes``, ``over_max``, ``errors``, ``duplicates``: per-minute counts.  Each write adds
  one sample per (minute, product) holding what that write saw in the minute; a bucket's
  *sum* is the count.  (One sample per line would double the write cost for nothing.)

The rollup keeps one sample per (series, microsecond): a later sample at the same time
replaces the earlier one.  Log times have millisecond resolution and several lines share a
millisecond, so a line's sample time is its log time plus a few microseconds:
``slot * SLOT_US + rank``, where ``rank`` numbers the lines of the file sharing that
millisecond (carried across reads in the checkpoint) and ``slot`` is the file's number in its
stream modulo SLOTS, so the last lines of a rotated file and the first of its successor never
meet.  A count sample takes the time of the first line it counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from telmon.formats import metpx
from telmon.tail.names import series_name

SLOTS = 4
SLOT_US = 250
CARRY_MS = 2000  # how far back (ms) the rank of a millisecond is remembered between reads


@dataclass(slots=True)
class Carry:
    """Ranks already given per millisecond (recent ones only), and the last line's level."""

    ms: list[int] = field(default_factory=list)
    n: list[int] = field(default_factory=list)
    level: int = metpx.LEVEL_NONE

    def to_json(self) -> dict[str, Any]:
        return {"ms": self.ms, "n": self.n, "level": self.level}

    @staticmethod
    def from_json(data: dict[str, Any] | None) -> Carry:
        data = data or {}
        return Carry(list(data.get("ms", [])), list(data.get("n", [])), int(data.get("level", metpx.LEVEL_NONE)))


def sample_keys(log_ms: np.ndarray, carry: Carry, slot: int) -> tuple[np.ndarray, Carry]:
    """Microsecond sample times for lines in file order, and the carry after them."""
    n = len(log_ms)
    if n == 0:
        return np.zeros(0, np.int64), carry
    order = np.argsort(log_ms, kind="stable")
    sm = log_ms[order]
    first = np.r_[True, sm[1:] != sm[:-1]]
    pos = np.arange(n)
    rank_sorted = pos - np.maximum.accumulate(np.where(first, pos, 0))
    base = np.zeros(n, np.int64)
    if carry.ms:
        cms = np.array(carry.ms, np.int64)
        cn = np.array(carry.n, np.int64)
        at = np.minimum(np.searchsorted(cms, sm), len(cms) - 1)
        hit = cms[at] == sm
        base[hit] = cn[at[hit]]
    rank = np.empty(n, np.int64)
    rank[order] = rank_sorted + base
    keys = log_ms * 1000 + slot % SLOTS * SLOT_US + rank
    # new carry: counts of this read's milliseconds on top of the old ones, recent ones kept
    uniq_at = np.flatnonzero(first)
    uniq = sm[uniq_at]
    counts = np.diff(np.r_[uniq_at, n]) + base[uniq_at]
    merged = dict(zip(carry.ms, carry.n))
    merged.update(zip(uniq.tolist(), counts.tolist()))
    horizon = int(sm[-1]) - CARRY_MS
    kept = sorted(k for k in merged if k >= horizon)
    return keys, Carry(kept, [merged[k] for k in kept], carry.level)


@dataclass(slots=True)
class ChunkStats:
    """What one read of one file gives: samples for the series, counters, the new carry."""

    samples: list[tuple[str, np.ndarray, np.ndarray]]
    carry: Carry
    counts: dict[str, int]
    first_at: float | None
    last_at: float | None
    bad_lines: np.ndarray  # indices (into the chunk's lines) of unparseable lines

    @property
    def sample_count(self) -> int:
        return sum(len(t) for _, t, _ in self.samples)


def chunk_stats(p: metpx.ParsedLines, *, direction: str, client: str, machine: str, slot: int,
                carry: Carry, max_latency: float) -> ChunkStats:
    """Samples of one parsed chunk of one file (see module doc)."""
    kind = p.kind
    counted = np.flatnonzero((kind == metpx.TRANSFER) | (kind == metpx.DUPLICATE) | (kind == metpx.ERROR))
    keys, new_carry = sample_keys(p.log_ms[counted], carry, slot)
    new_carry.level = p.last_level
    types = list(p.types)
    unknown = len(types)
    types.append(metpx.UNKNOWN)
    ptype = p.ptype[counted].astype(np.int64)
    ptype[ptype < 0] = unknown
    k = kind[counted]
    # series code = product index * 8 + metric index
    codes: list[np.ndarray] = []
    times: list[np.ndarray] = []
    values: list[np.ndarray] = []
    tr = k == metpx.TRANSFER
    if tr.any():
        lat = p.latency[counted[tr]]
        codes.append(ptype[tr] * 8 + 0)
        times.append(keys[tr])
        values.append(lat)
    minute = p.log_ms[counted] // 60000
    for metric_code, mask, value in (
        (1, tr, p.nbytes[counted].astype(np.float64)),
        (2, tr & (p.latency[counted] > max_latency), np.ones(len(k))),
        (3, k == metpx.ERROR, np.ones(len(k))),
        (4, k == metpx.DUPLICATE, np.ones(len(k))),
    ):
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            continue
        group = ptype[idx] * (1 << 40) + minute[idx]
        order = np.lexsort((keys[idx], group))
        g = group[order]
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        codes.append(ptype[idx][order][starts] * 8 + metric_code)
        times.append(keys[idx][order][starts])
        values.append(np.add.reduceat(value[idx][order], starts))
    samples: list[tuple[str, np.ndarray, np.ndarray]] = []
    if codes:
        code = np.concatenate(codes)
        ts = np.concatenate(times)
        val = np.concatenate(values)
        order = np.lexsort((ts, code))
        code, ts, val = code[order], ts[order], val[order]
        cuts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
        ends = np.r_[cuts[1:], len(code)]
        metrics = ("latency", "bytes", "over_max", "errors", "duplicates")
        for a, b in zip(cuts.tolist(), ends.tolist()):
            c = int(code[a])
            name = series_name(direction, client, machine, types[c // 8], metrics[c % 8])
            samples.append((name, ts[a:b] / 1e6, val[a:b]))
    counts = p.counts()
    log_times = p.log_ms[counted]
    return ChunkStats(
        samples=samples, carry=new_carry, counts=counts,
        first_at=float(log_times.min()) / 1000 if len(log_times) else None,
        last_at=float(log_times.max()) / 1000 if len(log_times) else None,
        bad_lines=np.flatnonzero(kind == metpx.BAD),
    )
