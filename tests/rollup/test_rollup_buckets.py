"""Bucket maths and the byte layouts, no database."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telmon.rollup import codec
from telmon.rollup import varint as vi
from telmon.rollup.buckets import (
    US, aggregate, aggregate_arrays, compute_stats, concat_arrays, merge, merge_rows, rebucket, removal_arrays,
)
from telmon.rollup.sketch import QuantileSketch

T0 = 1_700_000_000 * US
SAMPLES = st.lists(
    st.tuples(
        st.integers(0, 4),  # series
        st.integers(0, 3 * 86400 * US),  # time offset, us
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_subnormal=False),
    ),
    min_size=1, max_size=400,
)


def arrays(samples: list[tuple[int, int, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g, t, v = zip(*samples)
    return np.array(g, np.int64), np.array(t, np.int64) + T0, np.array(v, np.float64)


def assert_buckets_equal(a, b) -> None:
    for f in ("group", "start", "count", "min", "max", "first", "last", "inexact"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    np.testing.assert_allclose(a.sum, b.sum, rtol=1e-9, atol=1e-6)
    for f in ("owner", "sign", "key", "count"):
        np.testing.assert_array_equal(getattr(a.sketch, f), getattr(b.sketch, f), err_msg=f"sketch {f}")


@settings(max_examples=120, deadline=None)
@given(SAMPLES)
def test_buckets_hold_exactly_the_raw_samples_facts(samples) -> None:
    g, t, v = arrays(samples)
    arr = aggregate_arrays(g, t, v, 3600)
    for i in range(len(arr)):
        mine = (g == arr.group[i]) & (t // (3600 * US) * 3600 == arr.start[i])
        assert arr.count[i] == mine.sum()
        assert arr.min[i] == v[mine].min() and arr.max[i] == v[mine].max()
        assert arr.first[i] == t[mine].min() and arr.last[i] == t[mine].max()
        assert math.isclose(arr.sum[i], math.fsum(v[mine]), rel_tol=1e-9, abs_tol=1e-6)
    assert arr.count.sum() == len(v)


@settings(max_examples=120, deadline=None)
@given(SAMPLES, st.integers(1, 20))
def test_minutes_merged_into_hours_equal_hours_from_raw(samples, seed: int) -> None:
    """Merging is exact whatever the grouping: minutes -> hours -> days, or any split of the
    samples into partials (written in any order), gives the buckets of the whole."""
    g, t, v = arrays(samples)
    direct_days = aggregate_arrays(g, t, v, 86400)
    via_minutes = rebucket(rebucket(aggregate_arrays(g, t, v, 60), 3600), 86400)
    assert_buckets_equal(direct_days, via_minutes)
    rng = np.random.default_rng(seed)
    cut = rng.integers(0, 4, len(v))
    order = rng.permutation(4)
    partials = concat_arrays([aggregate_arrays(g[cut == k], t[cut == k], v[cut == k], 86400) for k in order])
    assert_buckets_equal(direct_days, merge_rows(partials))


@settings(max_examples=80, deadline=None)
@given(SAMPLES, st.integers(1, 20))
def test_removal_partials_take_samples_out_exactly_except_extremes(samples, seed: int) -> None:
    g, t, v = arrays(samples)
    rng = np.random.default_rng(seed)
    out = rng.random(len(v)) < 0.3
    whole = aggregate_arrays(g, t, v, 3600)
    removed = merge_rows(concat_arrays([whole, removal_arrays(g[out], t[out], v[out], 3600)]))
    kept = aggregate_arrays(g[~out], t[~out], v[~out], 3600)
    touched = np.isin(removed.start * 10 + removed.group,
                      (t[out] // (3600 * US) * 3600) * 10 + g[out])
    np.testing.assert_array_equal(removed.count, kept.count)
    np.testing.assert_allclose(removed.sum, kept.sum, rtol=1e-9, atol=1e-5)
    for f in ("owner", "sign", "key", "count"):
        np.testing.assert_array_equal(getattr(removed.sketch, f), getattr(kept.sketch, f))
    # min/max become bounds where samples were removed, and say so
    assert (removed.min <= kept.min).all() and (removed.max >= kept.max).all()
    np.testing.assert_array_equal(removed.inexact, touched)


@settings(max_examples=80, deadline=None)
@given(SAMPLES)
def test_block_encoding_round_trips_partials(samples) -> None:
    g, t, v = arrays(samples)
    half = len(v) // 2
    parts = [aggregate_arrays(g[:half], t[:half], v[:half], 60), aggregate_arrays(g[half:], t[half:], v[half:], 60),
             removal_arrays(g[:3], t[:3], v[:3], 60)]
    rows = []
    for p in parts:
        enc = codec.encode_blocks(p, 60, 3600)
        rows += list(zip(enc.series_id, enc.start, enc.data))
    decoded = codec.decode_blocks(rows, 60, 0.01)
    assert_buckets_equal(merge_rows(concat_arrays(parts)), decoded)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.integers(-2**62, 2**62), max_size=50), max_size=20))
def test_chunks_and_varints_round_trip(runs: list[list[int]]) -> None:
    lengths = np.array([len(r) for r in runs], np.int64)
    ts = np.concatenate([np.sort(np.array(r, np.int64) // 4) for r in runs]) if runs else np.zeros(0, np.int64)
    values = np.arange(len(ts), dtype=np.float64) * 0.5
    got_ts, got_v, got_len = codec.decode_chunks(*codec.encode_chunks(ts, values, lengths))
    np.testing.assert_array_equal(got_ts, ts)
    np.testing.assert_array_equal(got_v, values)
    np.testing.assert_array_equal(got_len, lengths)
    flat = np.array([x for r in runs for x in r], np.int64)
    codes = vi.zigzag(flat)
    np.testing.assert_array_equal(vi.unzigzag(vi.decode_varints(vi.encode_varints(codes)[0].tobytes())), flat)


def test_corrupt_bytes_raise_value_error() -> None:
    arr = aggregate_arrays(np.zeros(5, np.int64), T0 + np.arange(5) * 60 * US, np.arange(5.0), 3600)
    enc = codec.encode_blocks(arr, 3600, 86400)
    with pytest.raises(ValueError):
        codec.decode_blocks([(enc.series_id[0], enc.start[0], enc.data[0][:-3])], 3600, 0.01)


def test_one_sample_minute_buckets_store_no_sketch() -> None:
    """Minute buckets of minute samples cost about 11 bytes: the sketch is implied by the value."""
    n = 600
    arr = aggregate_arrays(np.zeros(n, np.int64), T0 + np.arange(n) * 60 * US, np.random.default_rng(1).normal(50, 5, n), 60)
    enc = codec.encode_blocks(arr, 60, 3600)
    assert sum(len(d) for d in enc.data) / n < 13


def test_bucket_api_aggregate_merge_and_quantile() -> None:
    ts = 1_699_999_980 + np.arange(180) * 20.0  # minute-aligned
    values = np.linspace(1, 180, 180)
    minutes = aggregate(ts, values, 60)
    assert len(minutes) == 60 and all(b.count == 3 for b in minutes)
    hour = merge(minutes)
    assert hour.count == 180 and hour.min == 1 and hour.max == 180
    assert hour.sum == pytest.approx(values.sum())
    assert hour.first_ts == ts[0] and hour.last_ts == ts[-1]
    assert hour.quantile(0.5) == pytest.approx(np.quantile(values, 0.5, method="lower"), rel=0.01)
    assert hour.sketch == QuantileSketch.from_values(values)
    with pytest.raises(ValueError):
        aggregate([1.0], [float("inf")], 60)


def test_stats_clamp_quantiles_and_report_expected() -> None:
    arr = aggregate_arrays(np.zeros(3, np.int64), T0 + np.arange(3) * US, np.array([10.0, 10.0, 10.0]), 60)
    stats = compute_stats(arr, ["count", "mean", "p0", "p50", "p100", "completeness"], expected=np.array([6.0]))
    assert stats["count"][0] == 3 and stats["mean"][0] == 10.0
    assert stats["p0"][0] == stats["p50"][0] == stats["p100"][0] == 10.0  # clamped into [min, max]
    assert stats["completeness"][0] == 0.5
    with pytest.raises(ValueError):
        compute_stats(arr, ["p101"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10**6, 10**6).map(lambda i: i / 100),
    st.integers(-10**15, 10**15).map(float),
    st.just(-0.0),
), max_size=30), max_size=12))
def test_decimal_floats_round_trip_bit_exact(segments: list[list[float]]) -> None:
    from telmon.rollup import decimals

    per = np.array([len(s) for s in segments], np.int64)
    values = np.array([x for s in segments for x in s], np.float64)
    blobs = decimals.encode(values, per)
    back = decimals.decode(b"".join(blobs), [len(b) for b in blobs], per)
    np.testing.assert_array_equal(back.view(np.int64), values.view(np.int64))
    for seg, blob in zip(segments, blobs):
        assert len(blob) <= (1 + 8 * len(seg) if seg else 0)


def test_short_decimals_take_about_two_bytes() -> None:
    from telmon.rollup import decimals

    values = np.round(np.random.default_rng(4).normal(50, 10, 6000), 2)
    blobs = decimals.encode(values, np.full(100, 60))
    assert sum(map(len, blobs)) / len(values) < 2.2


def test_both_decimal_decoders_agree() -> None:
    from telmon.rollup import decimals

    rng = np.random.default_rng(8)
    for per in (np.full(50, 60), np.ones(500, np.int64), np.array([0, 3, 0, 1, 2])):
        n = int(per.sum())
        for values in (np.round(rng.normal(50, 10, n), 2), rng.normal(0, 1, n)):
            blobs = decimals.encode(values, per)
            joined, sizes = b"".join(blobs), np.array([len(b) for b in blobs])
            for decoder in (decimals._decode_all, decimals._decode_each):
                np.testing.assert_array_equal(decoder(joined, sizes, per).view(np.int64), values.view(np.int64))


def test_packed_parts_round_trip_and_are_smaller() -> None:
    rng = np.random.default_rng(2)
    n = 24 * 60
    arr = aggregate_arrays(np.zeros(n, np.int64), T0 + np.arange(n) * 60 * US, np.round(rng.normal(40, 5, n), 2), 3600)
    plain = codec.encode_blocks(arr, 3600, 86400)
    packed = codec.encode_blocks(arr, 3600, 86400, pack=True)
    assert sum(map(len, packed.data)) < 0.8 * sum(map(len, plain.data))
    back = codec.decode_blocks(list(zip(packed.series_id, packed.start, packed.data)), 3600, 0.01)
    assert_buckets_equal(arr, back)
    with pytest.raises(ValueError):
        codec.decode_blocks([(0, packed.start[0], packed.data[0][:40])], 3600, 0.01)


@pytest.mark.parametrize("unit_us", [1, 1000, 1_000_000, 60_000_000])
def test_offsets_round_trip_in_every_unit(unit_us: int) -> None:
    rng = np.random.default_rng(unit_us % 97)
    t = T0 // 3600 * 3600 + rng.integers(0, 3 * 86400 * US // unit_us, 500) * unit_us
    g = rng.integers(0, 3, 500)
    for step, span in ((60, 3600), (3600, 86400)):
        arr = aggregate_arrays(g, t, rng.normal(0, 1, 500), step)
        enc = codec.encode_blocks(arr, step, span)
        assert_buckets_equal(arr, codec.decode_blocks(list(zip(enc.series_id, enc.start, enc.data)), step, 0.01))
