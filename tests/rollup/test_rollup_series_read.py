"""series(): the tier is chosen for the caller; quantiles come from merged sketches."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from telmon.errors import NotFound
from telmon.rollup.errors import BadSeriesQuery
from telmon.rollup.store import SeriesStore

from .conftest import NOW

DAY = 86400


def within(estimate: float, exact: float, alpha: float = 0.01) -> bool:
    return abs(estimate - exact) <= alpha * abs(exact) * (1 + 1e-9)


@pytest.fixture
def history(sstore: SeriesStore) -> tuple[SeriesStore, np.ndarray, np.ndarray]:
    """400 days of a latency series: a sample every 15 minutes, log-normal."""
    ts = NOW - 400 * DAY + np.arange(0, 400 * DAY, 900.0)
    values = np.random.default_rng(11).lognormal(4, 0.7, len(ts))
    sstore.write([("tx.latency", ts, values)], now=NOW)
    return sstore, ts, values


@pytest.mark.parametrize("days, step, tier, out_step", [
    (1, None, 60, 60), (30, None, 3600, 3600), (300, None, 3600, 3600), (1000, None, DAY, DAY), (1, 900, 60, 900),
    (1, 10, 0, 10),
])
def test_the_tier_is_chosen_from_the_span(history, days: int, step: int | None, tier: int, out_step: int) -> None:
    ss, ts, values = history
    ans = ss.series("tx.latency", NOW - days * DAY, NOW, step=step, stats=["count"], now=NOW)
    assert ans.series[0].tier == tier and ans.step == out_step and ans.covered
    assert sum(p["count"] for p in ans.series[0].points) == ((ts >= NOW - days * DAY) & (ts < NOW)).sum()


def test_p95_over_30_days_from_merged_hour_sketches(history) -> None:
    ss, ts, values = history
    ans = ss.series("tx.latency", NOW - 30 * DAY, NOW, step=0, stats=["count", "p50", "p95", "p99", "min", "max"], now=NOW)
    assert ans.series[0].tier == 3600 and ans.step == 0
    [point] = ans.series[0].points
    mine = values[ts >= NOW - 30 * DAY]
    assert point["count"] == len(mine) and point["min"] == mine.min() and point["max"] == mine.max()
    for q in (50, 95, 99):
        assert within(point[f"p{q}"], float(np.quantile(mine, q / 100, method="lower")))


def test_machines_merge_into_one_distribution(sstore: SeriesStore) -> None:
    """Medians of machines with very different loads: the merged median is the median of the
    union (within 1%), which no average of per-machine medians gives."""
    rng = np.random.default_rng(2)
    ts = NOW - DAY + np.arange(0, DAY, 60.0)
    data = {f"m{i}.lat": rng.lognormal(i, 0.5, len(ts)) for i in range(6)}
    sstore.write([(n, ts, v) for n, v in data.items()], now=NOW)
    union = np.concatenate(list(data.values()))
    ans = sstore.series("m*.lat", NOW - DAY, NOW, step=0, stats=["count", "p50", "p99"], agg="merge", now=NOW)
    [merged] = ans.series
    assert merged.members == sorted(data) and len(merged.points) == 1
    p = merged.points[0]
    assert p["count"] == len(union)
    assert within(p["p50"], float(np.quantile(union, 0.5, method="lower")))
    assert within(p["p99"], float(np.quantile(union, 0.99, method="lower")))
    per_machine = sstore.series("m*.lat", NOW - DAY, NOW, step=DAY, stats=["p50"], now=NOW)
    assert [s.name for s in per_machine.series] == sorted(data)
    mean_of_medians = np.mean([s.points[0]["p50"] for s in per_machine.series])
    assert not within(mean_of_medians, float(np.quantile(union, 0.5, method="lower")), 0.05)


def test_sum_adds_each_stat_across_series(sstore: SeriesStore) -> None:
    ts = NOW - 2 * 3600 + np.arange(0, 2 * 3600, 60.0)
    sstore.write([("rx.a", ts, np.full(len(ts), 2.0)), ("rx.b", ts[:60], np.full(60, 3.0))], now=NOW)
    ans = sstore.series("rx.*", NOW - 2 * 3600, NOW, step=3600, stats=["mean", "count"], agg="sum", now=NOW)
    assert [(p["mean"], p["count"]) for p in ans.series[0].points] == [(5.0, 120.0), (2.0, 60.0)]


def test_json_and_csv_forms(sstore: SeriesStore) -> None:
    sstore.write([("j.a", [NOW - 30, NOW - 20], [1.0, 3.0])], now=NOW)
    ans = sstore.series("j.a", NOW - 60, NOW, step=60, stats=["count", "mean", "p50", "min"], now=NOW)
    body = ans.to_json()
    assert body["step"] == 60 and body["series"][0]["points"] == [
        {"time": "2023-11-14T23:59:00Z", "t": NOW - 60, "count": 2, "mean": 2.0, "p50": pytest.approx(1.0, rel=0.01), "min": 1.0}]
    rows = list(csv.reader(io.StringIO(ans.to_csv())))
    assert rows[0] == ["series", "time", "count", "mean", "p50", "min"]
    assert rows[1][:4] == ["j.a", "2023-11-14T23:59:00Z", "2", "2.0"]


def test_bad_questions_raise_clear_errors(history) -> None:
    ss, _, _ = history
    with pytest.raises(BadSeriesQuery, match="unknown stat"):
        ss.series("tx.latency", NOW - DAY, NOW, stats=["p95", "avg"], now=NOW)
    with pytest.raises(BadSeriesQuery, match="agg"):
        ss.series("tx.latency", NOW - DAY, NOW, agg="max", now=NOW)
    with pytest.raises(BadSeriesQuery, match="after start"):
        ss.series("tx.latency", NOW, NOW - DAY, now=NOW)
    with pytest.raises(BadSeriesQuery, match="larger step"):
        ss.series("tx.latency", NOW - 2 * DAY + 1, NOW, step=1, now=NOW)  # raw samples, one point a second
    with pytest.raises(NotFound):
        ss.series("no.such.*", NOW - DAY, NOW, now=NOW)
    note = ss.series("tx.latency", NOW - 5 * DAY, NOW, step=90, stats=["count"], now=NOW)
    assert note.step == 90 and note.series[0].tier == 60 and "using 120s" in note.notes[0]
