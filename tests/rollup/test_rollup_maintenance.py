"""Revert, prune, rebuild and reshape on a real SQLite store."""

from __future__ import annotations

import numpy as np
import pytest

from telmon.errors import NotFound
from telmon.rollup.buckets import aggregate_arrays, compute_stats, rebucket, to_us
from telmon.rollup.errors import BadSeriesQuery
from telmon.rollup.store import SeriesStore
from telmon.rollup.tiers import block_buckets

from .conftest import NOW, assert_same_state, tier_state

DAY = 86400


def test_revert_restores_the_exact_prior_state(sstore: SeriesStore) -> None:
    """State after A == state after A, B, revert B, bucket by bucket in every tier -- with B
    overlapping A's times (its samples shadowed A's) and adding late ones."""
    rng = np.random.default_rng(5)
    ts_a = NOW - DAY + np.arange(0, DAY, 60.0)
    sstore.write([("s1", ts_a, rng.normal(0, 1, len(ts_a))), ("s2", ts_a, rng.normal(5, 1, len(ts_a)))], now=NOW)
    before = {n: tier_state(sstore, n) for n in ("s1", "s2")}
    ts_b = np.r_[ts_a[::7], NOW - 1.5 * DAY + np.arange(0, 3600, 30.0)]  # overlaps + late samples
    b = sstore.write([("s1", ts_b, rng.normal(100, 1, len(ts_b))), ("s3", ts_b, np.ones(len(ts_b)))], now=NOW)
    assert b.replaced == len(ts_a[::7])
    assert tier_state(sstore, "s1")[3600]["max"].max() > 50
    result = sstore.revert(b.batch_id, now=NOW)
    assert result.samples_removed == 2 * len(ts_b) and result.samples_pruned == 0 and result.buckets_adjusted == 0
    for name in ("s1", "s2"):
        assert_same_state(tier_state(sstore, name), before[name])
    assert tier_state(sstore, "s3")[60]["count"].size == 0
    with pytest.raises(BadSeriesQuery, match="already reverted"):
        sstore.revert(b.batch_id, now=NOW)
    with pytest.raises(NotFound):
        sstore.revert(9999, now=NOW)


def test_revert_of_an_older_batch_keeps_the_newer_values(sstore: SeriesStore) -> None:
    t = NOW - 3600
    a = sstore.write([("x", [t, t + 60], [1.0, 2.0])], now=NOW)
    sstore.write([("x", [t], [10.0])], now=NOW)
    sstore.revert(a.batch_id, now=NOW)
    _, values = sstore.samples("x", t - 1, t + 120)
    assert values.tolist() == [10.0]
    assert sstore.buckets("x", 3600).sum.tolist() == [10.0]


def test_revert_beyond_raw_retention_subtracts_and_flags_bounds(sstore: SeriesStore) -> None:
    base = NOW - 5 * DAY
    sstore.write([("y", base + np.arange(0, 3600, 60.0), np.arange(60.0))], now=base + 3600)
    sstore.prune(now=NOW)
    late = sstore.write([("y", [base + 10.0, base + 20.0], [-50.0, 500.0])], now=NOW)
    r = sstore.revert(late.batch_id, now=NOW)
    assert r.buckets_adjusted > 0 and r.buckets_recomputed == 0
    hour = sstore.buckets("y", 3600)
    # count, sum and the sketch are exact again; min/max stay the widened bounds, flagged
    assert hour.count.tolist() == [60] and hour.sum[0] == pytest.approx(np.arange(60.0).sum())
    assert hour.min.tolist() == [-50.0] and hour.max.tolist() == [500.0] and hour.inexact.tolist() == [True]
    ans = sstore.series("y", base, base + 3600, step=3600, stats=["p50", "inexact"], now=NOW)
    assert ans.series[0].points[0]["p50"] == pytest.approx(29.0, rel=0.01)
    assert ans.series[0].points[0]["inexact"] is True


def test_revert_after_prune_says_what_it_could_not_take_out(sstore: SeriesStore) -> None:
    old = sstore.write([("z", [NOW - 3 * DAY], [7.0])], now=NOW - 3 * DAY)
    sstore.prune(now=NOW)
    r = sstore.revert(old.batch_id, now=NOW)
    assert (r.samples_removed, r.samples_pruned) == (0, 1)


def test_prune_keeps_retention_and_stops_growth(sstore: SeriesStore) -> None:
    """Write 6 days of minute samples, a day at a time, pruning as a deployment would: raw
    keeps 48 h, and with a short policy the stored rows stop growing."""
    sstore.set_policy("short.*", "raw:1d,1m:2d,1h:4d")
    counts = []
    for day in range(6):
        now = NOW + (day + 1) * DAY
        ts = NOW + day * DAY + np.arange(0, DAY, 60.0)
        sstore.write([("short.a", ts, np.sin(ts)), ("long.b", ts, np.cos(ts))], now=now)
        sstore.prune(now=now)
        with sstore.store._read() as conn:
            counts.append(conn.execute("SELECT count(*) FROM series_parts p JOIN series s ON s.id = p.series_id "
                                       "WHERE s.name = 'short.a'").fetchone()[0])
    end = NOW + 6 * DAY
    raw_ts, _ = sstore.samples("short.a", 0, end)
    assert raw_ts.min() >= end - DAY and raw_ts.size == 1440
    assert sstore.samples("long.b", 0, end)[0].min() >= end - 2 * DAY
    minutes = sstore.buckets("short.a", 60)
    assert minutes.start.min() + 60 > end - 2 * DAY and minutes.count.sum() == 2 * 1440
    assert sstore.buckets("short.a", 3600).start.min() + 3600 > end - 4 * DAY
    assert counts[-1] == counts[-2] == counts[-3]  # steady: as much pruned as written
    # compaction left one part row per closed block; open ones wait for their last parts
    with sstore.store._read() as conn:
        parts = conn.execute("SELECT step, start, count(*) FROM series_parts GROUP BY series_id, step, start").fetchall()
    closed = [n for step, start, n in parts if start + step * block_buckets(step) <= end]
    assert closed and max(closed) == 1
    assert max(n for _, _, n in parts) <= 6


def test_rebuild_recomputes_from_raw(sstore: SeriesStore) -> None:
    ts = NOW - DAY + np.arange(0, DAY, 60.0)
    values = np.random.default_rng(3).normal(0, 1, len(ts))
    sstore.write([("r.a", ts, values)], now=NOW)
    good = tier_state(sstore, "r.a")
    with sstore.store.transaction() as conn:  # damage: lose the minute tier of the last 6 hours
        conn.execute("DELETE FROM series_parts WHERE step = 60 AND start >= ?", (NOW - 6 * 3600,))
    assert tier_state(sstore, "r.a")[60]["count"].size < good[60]["count"].size
    r = sstore.rebuild("r.*", NOW - 12 * 3600, now=NOW)
    assert r.series == 1 and r.buckets > 0
    assert_same_state(tier_state(sstore, "r.a"), good)
    with pytest.raises(NotFound):
        sstore.rebuild("nothing.*", now=NOW)


def test_reshape_builds_new_tiers_and_drops_old_ones(sstore: SeriesStore) -> None:
    """Minutes over 4 days: raw covers the last 2.  The new policy trades 1m for 5m and asks
    for coarser hourly sketches; reshape fills 5m from raw where it reaches and from the
    old minutes before that, re-bins the hours, drops the minutes."""
    ts = NOW - 4 * DAY + np.arange(0, 4 * DAY, 60.0)
    values = np.random.default_rng(9).lognormal(3, 1, len(ts))
    sstore.write([("p.a", ts, values)], now=NOW)
    sstore.prune(now=NOW)
    sstore.set_policy("p.*", "raw:2d,5m:14d,1h:2y@0.02,1d:10y")
    r = sstore.reshape(now=NOW)
    assert (r.series, r.tiers_built, r.tiers_converted, r.tiers_dropped, r.buckets_lost) == (1, 1, 1, 1, 0)
    assert sstore.get("p.a").reshape_from is None
    five = sstore.buckets("p.a", 300)
    sid = sstore.get("p.a").id
    want = aggregate_arrays(np.full(len(ts), sid), to_us(ts), values, 300)
    np.testing.assert_array_equal(five.start, want.start)
    np.testing.assert_array_equal(five.count, want.count)
    np.testing.assert_array_equal(five.max, want.max)
    np.testing.assert_array_equal(five.sketch.key, want.sketch.key)
    assert tier_state(sstore, "p.a", (60,))[60]["count"].size == 0
    hours = sstore.buckets("p.a", 3600)
    assert hours.alpha == 0.02
    days_from_hours = compute_stats(rebucket(hours, DAY), ["p50", "count"])
    days = compute_stats(sstore.buckets("p.a", DAY), ["p50", "count"])
    np.testing.assert_array_equal(days_from_hours["count"], days["count"])
    for d in range(4):  # each day's median from the re-binned 2% hours is within the bound of the exact one
        day_values = values[(ts >= NOW - (4 - d) * DAY) & (ts < NOW - (3 - d) * DAY)]
        exact = np.quantile(day_values, 0.5, method="lower")
        assert abs(days_from_hours["p50"][d] - exact) <= (1.01 * 1.02 - 1) * exact
        assert abs(days["p50"][d] - exact) <= 0.01 * exact * (1 + 1e-9)
    assert sstore.reshape(now=NOW).series == 0  # nothing left to do


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_random_writes_and_reverts_match_a_model(sstore: SeriesStore, seed: int) -> None:
    """Writes that overlap, repeat and arrive late, and reverts of any earlier batch (some of
    whose samples are shadowed, some shadowing): after every step each tier equals the
    aggregation of the samples in force -- each time's newest value among live batches."""
    from .test_rollup_store_write import expected_state

    rng = np.random.default_rng(seed)
    grid = NOW - 40 * 3600 + np.arange(0, 40 * 3600, 300.0)
    live: dict[int, dict[float, float]] = {}  # batch -> its samples, in write order
    for step in range(14):
        if live and rng.random() < 0.35:
            batch = int(rng.choice(sorted(live)))
            sstore.revert(batch, now=NOW)
            del live[batch]
        else:
            picks = np.unique(rng.choice(grid, size=rng.integers(1, 120)))
            values = np.round(rng.normal(0, 10, len(picks)), 2)
            r = sstore.write([("q", picks, values)], now=NOW)
            live[r.batch_id] = dict(zip(picks.tolist(), values.tolist()))
        in_force: dict[float, float] = {}
        for batch in sorted(live):
            in_force.update(live[batch])
        if not in_force:
            assert all(v["count"].size == 0 for v in tier_state(sstore, "q").values())
            continue
        ts = np.array(sorted(in_force))
        assert_same_state(tier_state(sstore, "q"), expected_state(sstore, "q", ts, np.array([in_force[t] for t in ts]), NOW))


def test_trickle_writes_keep_blocks_compact(sstore: SeriesStore) -> None:
    """A sample a minute, one write each: hot blocks get a part per write, and writes keep
    compacting them, so a read never merges more than ~40 parts of a block."""
    start = NOW - 2 * 3600
    for i in range(100):
        sstore.write([("t.a", [start + 60 * i], [float(i)])], now=start + 60 * i + 1)
    with sstore.store._read() as conn:
        worst = conn.execute("SELECT max(n) FROM (SELECT count(*) AS n FROM series_parts "
                             "GROUP BY series_id, step, start)").fetchone()[0]
    assert worst <= 32 + 8
    day = sstore.buckets("t.a", DAY)
    assert day.count.tolist() == [100] and day.max.tolist() == [99.0]


def test_revert_reaches_tiers_awaiting_reshape(sstore: SeriesStore) -> None:
    ts = NOW - 3600 + np.arange(0, 3600, 60.0)
    sstore.write([("w.a", ts, np.ones(60))], now=NOW)
    b = sstore.write([("w.a", ts[:10] + 30, np.full(10, 50.0))], now=NOW)
    sstore.set_policy("w.*", "raw:2d,5m:14d,1h:2y")
    sstore.write([("w.a", [NOW - 5], [1.0])], now=NOW)  # the series now follows the new policy
    sstore.revert(b.batch_id, now=NOW)
    assert sstore.buckets("w.a", 60).max.max() == 1.0  # the old minute tier was corrected too
    sstore.reshape(now=NOW)
    assert sstore.buckets("w.a", 300).max.max() == 1.0
