"""Writes into a real SQLite store: tiers right for any arrival order, duplicates, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from telmon.rollup.buckets import US, aggregate_arrays, to_us
from telmon.rollup.store import SeriesStore
from telmon.rollup.tiers import DEFAULT_POLICY

from .conftest import NOW, assert_same_state, tier_state

DAY = 86400


def expected_state(ss: SeriesStore, name: str, ts: np.ndarray, values: np.ndarray, now: float) -> dict:
    """What every tier should hold for these samples in force (pure aggregation)."""
    sid = ss.get(name).id
    out = {}
    for tier in DEFAULT_POLICY.tiers:
        start = to_us(ts) // (tier.step * US) * tier.step
        keep = start + tier.step > tier.cutoff(now)
        arr = aggregate_arrays(np.full(keep.sum(), sid), to_us(ts[keep]), values[keep], tier.step)
        out[tier.step] = {
            "start": arr.start, "count": arr.count, "sum": arr.sum, "min": arr.min, "max": arr.max,
            "first": arr.first, "last": arr.last, "inexact": arr.inexact, "sk_owner": arr.sketch.owner,
            "sk_sign": arr.sketch.sign, "sk_key": arr.sketch.key, "sk_count": arr.sketch.count,
        }
    return out


def test_tiers_hold_the_aggregates_of_the_raw_samples(sstore: SeriesStore) -> None:
    rng = np.random.default_rng(1)
    ts = NOW - 3 * DAY + np.sort(rng.uniform(0, 3 * DAY, 5000))
    values = rng.normal(20, 5, 5000)
    r = sstore.write([("site1.temp", ts, values)], source="test", now=NOW)
    assert (r.accepted, r.rejected, r.replaced, r.series_created) == (5000, 0, 0, 1)
    assert_same_state(tier_state(sstore, "site1.temp"), expected_state(sstore, "site1.temp", ts, values, NOW))
    got_ts, got_v = sstore.samples("site1.temp", NOW - 3 * DAY, NOW)
    np.testing.assert_array_equal(got_v, values)
    np.testing.assert_allclose(got_ts, ts, atol=1e-6)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_out_of_order_late_and_duplicate_writes_end_up_exactly_right(sstore: SeriesStore, seed: int) -> None:
    """Random writes in random order, some repeating (series, time) with new values: every
    tier equals the aggregation of the samples in force (last write wins)."""
    rng = np.random.default_rng(seed)
    grid = NOW - 10 * DAY + np.arange(0, 10 * DAY, 600.0)  # 10 days of 10-minute slots
    in_force: dict[float, float] = {}
    for _ in range(12):
        picks = rng.choice(grid, size=rng.integers(1, 300), replace=True)  # repeats inside a write too
        values = np.round(rng.normal(0, 100, len(picks)), 3)
        sstore.write([("m.lat", picks, values)], now=NOW)
        for t, v in zip(picks.tolist(), values.tolist()):
            in_force[t] = v  # the last occurrence wins, within and across writes
    ts = np.array(sorted(in_force))
    values = np.array([in_force[t] for t in ts])
    assert_same_state(tier_state(sstore, "m.lat"), expected_state(sstore, "m.lat", ts, values, NOW))


def test_duplicate_rule_last_write_wins_and_counts(sstore: SeriesStore) -> None:
    t = NOW - 3600
    r1 = sstore.write([("a", [t, t + 60, t], [1.0, 2.0, 3.0])], now=NOW)
    assert (r1.accepted, r1.replaced) == (2, 1)  # the second t replaced the first inside the write
    r2 = sstore.write([("a", [t + 60], [20.0])], now=NOW)
    assert (r2.accepted, r2.replaced) == (1, 1)
    _, values = sstore.samples("a", t, t + 120)
    assert values.tolist() == [3.0, 20.0]
    hour = sstore.buckets("a", 3600)
    assert hour.count.tolist() == [2] and hour.sum.tolist() == [23.0] and hour.min.tolist() == [3.0]


def test_bad_input_is_rejected_with_reasons_and_never_stored(sstore: SeriesStore) -> None:
    t = NOW - 600
    r = sstore.write([
        ("ok", [t, t + 1, t + 2, t + 3], [1.0, float("nan"), float("inf"), -float("inf")]),
        ("mixed", [t, t + 1, t + 2, t + 3], [1, "2.5", None, True]),
        ("times", [t, float("nan"), NOW - 20 * 365 * DAY, NOW + 86400], [1.0, 2.0, 3.0, 4.0]),
        ("short", [t, t + 1], [1.0]),
        ("bad*name", [t], [1.0]),
        (42, [t], [1.0]),
        (["a", "list"], [t], [1.0]),
    ], source="feed-x", now=NOW)
    assert r.accepted == 3 and r.rejected == 14
    assert r.reasons == {
        "NaN value": 1, "infinite value": 2, "non-numeric value": 3, "bad timestamp": 1,
        "older than retention": 1, "too far in the future": 1, "times and values differ in length": 2,
        "bad series name": 3,
    }
    assert {(x.series, x.reason, x.count) for x in r.rejections} >= {("ok", "infinite value", 2), ("bad*name", "bad series name", 1)}
    _, v = sstore.samples("ok", NOW - DAY, NOW)
    assert v.tolist() == [1.0]
    with sstore.store._read() as conn:
        rows = conn.execute("SELECT path, feed, origin, reason, batch_id FROM rejections ORDER BY id").fetchall()
    assert len(rows) == len(r.rejections)
    assert all(row[1] == "feed-x" and row[2] == "series" and row[4] == r.batch_id for row in rows)
    assert ("ok", "feed-x", "series", "infinite value: 2 samples", r.batch_id) in rows
    # series whose every sample was refused are not created
    assert [s.name for s in sstore.list_series()] == ["mixed", "ok", "times"]


def test_empty_write_makes_no_batch(sstore: SeriesStore) -> None:
    assert sstore.write([], now=NOW).batch_id is None
    r = sstore.write([("x", [], [])], now=NOW)
    assert r.accepted == 0 and r.rejected == 0


def test_backfill_beyond_raw_retention_is_merged_into_the_tiers(sstore: SeriesStore) -> None:
    """Raw samples are kept 48 h, buckets longer: a sample 5 days late still lands exactly."""
    base = NOW - 5 * DAY
    sstore.write([("b", base + np.arange(0, 3600, 60.0), np.arange(60.0))], now=NOW - 5 * DAY + 3600)
    sstore.prune(now=NOW)  # raw for that hour is gone now
    assert sstore.samples("b", base, base + 3600)[0].size == 0
    r = sstore.write([("b", [base + 30.0, base + 90.0], [-5.0, 100.0])], now=NOW)
    assert r.accepted == 2
    hour = sstore.buckets("b", 3600)
    assert hour.count.tolist() == [62] and hour.min.tolist() == [-5.0] and hour.max.tolist() == [100.0]
    assert hour.sum[0] == pytest.approx(np.arange(60.0).sum() + 95.0)
    assert not hour.inexact.any()
    # a duplicate of a sample whose raw copy is gone cannot replace it: it adds (documented)
    sstore.write([("b", [base], [1000.0])], now=NOW)
    assert sstore.buckets("b", 3600).count.tolist() == [63]


def test_many_series_in_one_write_and_expected_counts(sstore: SeriesStore) -> None:
    names = [f"host{i:03d}.cpu" for i in range(50)]
    sstore.define("host000.cpu", labels={"site": "a"}, interval=60, now=NOW)
    ts = NOW - 2 * 3600 + np.arange(0, 2 * 3600, 60.0)
    r = sstore.write([(n, ts, np.full(len(ts), float(i))) for i, n in enumerate(names)], now=NOW)
    assert r.accepted == 50 * 120 and r.series_created == 49
    row = sstore.get("host000.cpu")
    assert row.labels == {"site": "a"} and row.interval == 60
    ans = sstore.series("host000.cpu", NOW - 3 * 3600, NOW, step=3600, stats=["count", "expected", "completeness"], now=NOW)
    assert [(p["count"], p["expected"], p["completeness"]) for p in ans.series[0].points] == [
        (0, 60.0, 0.0), (60, 60.0, 1.0), (60, 60.0, 1.0)]


def test_policy_change_applies_to_new_data_at_once(sstore: SeriesStore) -> None:
    sstore.write([("fast.x", [NOW - 100], [1.0])], now=NOW)
    sstore.set_policy("fast.*", "raw:1h,10s:1d,1m:7d")
    sstore.write([("fast.x", [NOW - 50], [2.0])], now=NOW)
    row = sstore.get("fast.x")
    assert row.policy.spec == "raw:1h,10s:1d,1m:7d" and row.reshape_from is not None
    assert sstore.buckets("fast.x", 10).count.sum() == 1  # only the new sample so far
    assert sstore.policies() == [("fast.*", "raw:1h,10s:1d,1m:7d")]


def test_two_writers_on_one_store_see_each_other(sstore: SeriesStore) -> None:
    """Cached series rows are dropped when another SeriesStore (or process) changed them."""
    other = SeriesStore(sstore.store)
    t = NOW - 600
    sstore.write([("shared", [t], [1.0])], now=NOW)
    other.write([("shared", [t + 60], [2.0])], now=NOW)  # newer than what sstore has cached
    r = sstore.write([("shared", [t + 60], [5.0])], now=NOW)  # must see and replace other's sample
    assert r.replaced == 1
    assert sstore.buckets("shared", 3600).sum.tolist() == [6.0]
    other.prune(now=NOW + 3 * DAY)  # changes raw_from under sstore's feet
    assert sstore.write([("shared", [t + 120], [1.0])], now=NOW + 3 * DAY).accepted == 1
    assert sstore.get("shared").raw_from == NOW + 3 * DAY - 2 * DAY


def test_hourly_batches_fill_the_day_tier_exactly(sstore: SeriesStore) -> None:
    """One hour per write: the day tier's partials are the hour's, re-keyed -- still exact."""
    rng = np.random.default_rng(6)
    ts = NOW - 30 * 3600 + np.arange(0, 30 * 3600, 60.0)
    values = np.round(rng.normal(10, 3, len(ts)), 1)
    for h in range(30):
        part = slice(h * 60, (h + 1) * 60)
        sstore.write([("h.a", ts[part], values[part]), ("h.b", ts[part], -values[part])], now=NOW)
    for name, sign in (("h.a", 1), ("h.b", -1)):
        assert_same_state(tier_state(sstore, name), expected_state(sstore, name, ts, sign * values, NOW))
