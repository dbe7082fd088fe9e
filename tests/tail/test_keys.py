"""Sample times: never two samples of one series at one microsecond (the rollup keeps the last
of a (series, time)), whatever the reads' boundaries, and the same keys as one whole read."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from telmon.formats import metpx
from telmon.tail import synth
from telmon.tail.stats import SLOT_US, Carry, chunk_stats, sample_keys
from tests.tail.conftest import OFFSET, T0

ZONE = metpx.LogZone("-04:00")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=300), st.lists(st.integers(1, 299), max_size=5),
       st.integers(0, 7))
def test_keys_are_unique_and_do_not_depend_on_read_boundaries(steps: list[int], cuts: list[int], slot: int) -> None:
    ms = 1_700_000_000_000 + np.cumsum(np.array(steps, np.int64) // 4)  # many lines share a millisecond
    ms[::7] -= 3  # and a few come slightly out of order
    whole, _ = sample_keys(ms, Carry(), slot)
    assert len(np.unique(whole)) == len(whole)
    pieces, carry = [], Carry()
    bounds = sorted({c for c in cuts if c < len(ms)} | {0, len(ms)})
    for a, b in zip(bounds, bounds[1:]):
        keys, carry = sample_keys(ms[a:b], carry, slot)
        pieces.append(keys)
    assert np.array_equal(np.concatenate(pieces), whole)
    assert np.all(whole // 1000 == ms)  # a key stays inside its line's millisecond
    assert np.all((whole % 1000) // SLOT_US == slot % 4)


def test_successive_files_of_a_stream_use_other_microseconds() -> None:
    ms = np.full(5, 1_700_000_000_000, np.int64)  # the last lines of one file, the first of the next
    a, _ = sample_keys(ms, Carry(), 6)
    b, _ = sample_keys(ms, Carry(), 7)
    assert not set(a.tolist()) & set(b.tolist())


def test_reading_a_log_in_random_pieces_gives_unique_times_and_exact_sums() -> None:
    text, truth = synth.client_log("tx", "keys", T0, 3600, 20_000, seed=9, zone_offset_s=OFFSET)
    rows = text.splitlines(keepends=True)
    rng = np.random.default_rng(3)
    cuts = np.sort(rng.choice(np.arange(1, len(rows)), 40, replace=False))
    carry = Carry()
    seen: dict[str, list[float]] = defaultdict(list)
    sums: dict[str, float] = defaultdict(float)
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(rows)]):
        p = metpx.parse_chunk(b"".join(rows[a:b]), ZONE, prev_level=carry.level)
        cs = chunk_stats(p, direction="tx", client="keys", machine="m", slot=0, carry=carry, max_latency=15.0)
        carry = cs.carry
        for name, ts, vals in cs.samples:
            seen[name] += (np.round(np.asarray(ts) * 1e6)).astype(np.int64).tolist()
            metric = name.rsplit("/", 1)[1]
            sums[metric] += float(np.sum(vals)) if metric != "latency" else len(vals)
    for name, times in seen.items():
        assert len(set(times)) == len(times), name
    want = truth.totals()
    assert sums["latency"] == want["files"]
    assert sums["bytes"] == want["bytes"]
    assert sums["errors"] == want["errors"]
    assert sums["duplicates"] == want["duplicates"]
    assert sums["over_max"] == want["over_max"]
