"""A series' stored facts, and helpers that work on whole arrays of series ids at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from telmon.rollup.blockio import RawSamples, TierIO
from telmon.rollup.buckets import US, bucket_starts
from telmon.rollup.tiers import DEFAULT_POLICY, Policy, Tier, parse_policy

NO_RAW_FROM = np.iinfo(np.int64).min
SERIES_COLUMNS = "id, name, policy, reshape_from, raw_from, last_us, interval_s, labels"


@dataclass(slots=True)
class SeriesRow:
    id: int
    name: str
    policy: Policy
    reshape_from: Policy | None  # the earlier policy whose tiers await `rollup reshape`
    raw_from: float | None  # raw samples are complete from here on (None: since the start)
    last_us: int | None  # newest sample time ever accepted: an upper bound
    interval: float | None  # expected seconds between samples
    labels: dict[str, Any]

    @staticmethod
    def from_db(row: Sequence[Any]) -> SeriesRow:
        return SeriesRow(
            id=int(row[0]), name=row[1], policy=parse_policy(row[2]),
            reshape_from=parse_policy(row[3]) if row[3] else None,
            raw_from=row[4], last_us=row[5], interval=row[6], labels=orjson.loads(row[7]) if row[7] else {},
        )

    @property
    def raw_from_us(self) -> int:
        return NO_RAW_FROM if self.raw_from is None else int(np.ceil(self.raw_from * US))

    def alpha(self, step: int) -> float:
        for policy in (self.policy, self.reshape_from):
            tier = policy.tier(step) if policy else None
            if tier:
                return tier.alpha
        return DEFAULT_POLICY.tiers[0].alpha

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "labels": self.labels, "interval": self.interval, "policy": self.policy.spec,
            "reshape_pending": self.reshape_from is not None, "raw_from": self.raw_from,
            "last_ts": None if self.last_us is None else self.last_us / US,
        }


class BySeries:
    """Per-series values looked up by series id, for whole arrays of ids at once."""

    def __init__(self, sids: Sequence[int] | np.ndarray, values: Sequence[Any] | np.ndarray) -> None:
        sids = np.asarray(sids, dtype=np.int64)
        order = np.argsort(sids)
        self.keys = sids[order]
        self.values = np.asarray(values)[order]

    def __call__(self, sid: np.ndarray) -> np.ndarray:
        return self.values[np.searchsorted(self.keys, sid)]

    def has(self, sid: np.ndarray) -> np.ndarray:
        if len(self.keys) == 0:
            return np.zeros(len(sid), dtype=bool)
        at = np.minimum(np.searchsorted(self.keys, sid), len(self.keys) - 1)
        return self.keys[at] == sid


def match_pairs(a_sid: np.ndarray, a_ts: np.ndarray, b_sid: np.ndarray, b_ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (ia, ib) of equal (series, time) pairs; each side must be free of repeats."""
    n = len(a_sid)
    sid = np.r_[a_sid, b_sid]
    ts = np.r_[a_ts, b_ts]
    src = np.r_[np.zeros(n, np.int64), np.ones(len(b_sid), np.int64)]
    order = np.lexsort((src, ts, sid))
    s, t = sid[order], ts[order]
    eq = np.flatnonzero((s[1:] == s[:-1]) & (t[1:] == t[:-1]))
    return order[eq], order[eq + 1] - n


def coalesce_runs(sid: np.ndarray, start: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bucket keys -> ranges [lo, hi) of consecutive buckets per series (fewer statements)."""
    if len(sid) == 0:
        z = np.zeros(0, np.int64)
        return z, z, z
    order = np.lexsort((start, sid))
    s, t = sid[order], start[order]
    keep = np.r_[True, (s[1:] != s[:-1]) | (t[1:] != t[:-1])]
    s, t = s[keep], t[keep]
    new_run = np.r_[True, (s[1:] != s[:-1]) | (t[1:] != t[:-1] + step)]
    firsts = np.flatnonzero(new_run)
    lasts = np.r_[firsts[1:], len(s)] - 1
    return s[firsts], t[firsts], t[lasts] + step


def tier_groups(rows: Sequence[SeriesRow], now: float, *, pending: bool = False) -> list[tuple[TierIO, np.ndarray, np.ndarray]]:
    """(tier, series ids, their cutoffs) for every (step, accuracy) the series' policies hold.
    ``pending``: also the tiers of an earlier policy still stored until reshape (corrections
    such as a revert must reach them; new data does not)."""
    by_policy: dict[tuple[str, str], tuple[list[Tier], list[int]]] = {}
    for row in rows:
        tiers = list(row.policy.tiers)
        if pending and row.reshape_from is not None:
            steps = {t.step for t in tiers}
            tiers += [t for t in row.reshape_from.tiers if t.step not in steps]
        key = (row.policy.spec, row.reshape_from.spec if pending and row.reshape_from else "")
        by_policy.setdefault(key, (tiers, []))[1].append(row.id)
    groups: dict[tuple[int, float], tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for tiers, sids in by_policy.values():
        ids = np.array(sids, np.int64)
        for tier in tiers:
            s, c = groups.setdefault((tier.step, tier.alpha), ([], []))
            s.append(ids)
            c.append(np.full(len(ids), tier.cutoff(now)))
    return [(TierIO(step, alpha), np.concatenate(s), np.concatenate(c)) for (step, alpha), (s, c) in sorted(groups.items())]


def in_tier(samples: RawSamples, step: int, cutoff: BySeries, *, everyone: bool = False) -> RawSamples:
    """The samples of series in the tier whose bucket ends after the series' cutoff.
    ``everyone``: the caller knows every sample's series is in the tier."""
    if len(samples) == 0:
        return samples
    if everyone and (cutoff.values == cutoff.values[0]).all():
        # the usual case, every series in the tier under one policy: one comparison
        keep = bucket_starts(samples.ts, step) + step > cutoff.values[0]
    else:
        keep = cutoff.has(samples.sid)
        start = bucket_starts(samples.ts[keep], step)
        keep[keep] = start + step > cutoff(samples.sid[keep])
    return samples if keep.all() else samples.take(np.flatnonzero(keep))


def rows_by_id(conn: Any, sids: Sequence[int]) -> dict[int, SeriesRow]:
    out: dict[int, SeriesRow] = {}
    ids = sorted(set(int(s) for s in sids))
    for i in range(0, len(ids), 30000):
        part = ids[i:i + 30000]
        marks = ",".join("?" * len(part))
        for row in conn.execute(f"SELECT {SERIES_COLUMNS} FROM series WHERE id IN ({marks})", part):
            out[int(row[0])] = SeriesRow.from_db(row)
    return out


def alpha_lookup(conn: Any, known: dict[int, SeriesRow]) -> Callable[[int, int], float]:
    """(series id, step) -> the sketch accuracy of that tier of that series, reading rows
    not in ``known`` as needed (decoding a block needs it for the sketches it implies)."""
    def alpha_of(sid: int, step: int) -> float:
        if sid not in known:
            known.update(rows_by_id(conn, [sid]))
        return known[sid].alpha(step)
    return alpha_of
