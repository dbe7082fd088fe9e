"""Lizmon summaries from the rollups equal Lizmon's own rule (slots ``start < ts <= end``)
computed by brute force over the raw samples -- boundary samples included."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from telmon.push import lizmon
from tests.push.conftest import NOW, App


def brute_force(ts: list[float], values: list[float], span: int, step: int, now: float) -> list[dict[str, Any]]:
    """Lizmon's liz-receiver loop, restated: slots from floor(now - span) while start < now."""
    first = math.floor((now - span) / step) * step
    out = []
    s = first
    while s < now:
        inside = [v for t, v in zip(ts, values) if s < t <= s + step]
        if inside:
            avg = sum(inside) / len(inside)
            out.append({"start-sec": s, "end-sec": s + step, "num-samples": len(inside),
                        "avg": avg if float(avg).is_integer() else round(avg, 2), "min": min(inside),
                        "max": max(inside)})
        s += step
    return out[-60:]


class CountingSeries:
    """The SeriesStore, counting raw-sample reads (to see the tiers do the work)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.raw_reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def samples(self, *args: Any, **kwargs: Any) -> Any:
        self.raw_reads += 1
        return self._inner.samples(*args, **kwargs)


def _post(app: App, host: str, ts: list[float], values: list[float]) -> None:
    import orjson

    body = orjson.dumps([{"host": host, "time": t, "values": {"cpu": v}} for t, v in zip(ts, values)])
    r = app.client.post("/api/v1/samples", content=body)
    assert r.status_code == 200 and r.json()["rejected"] == 0, r.text
    app.push.writer.settle()


def _compare(app: App, host: str, ts: list[float], values: list[float]) -> dict[str, Any]:
    body = app.client.get(f"/api/perf/{host}").json()
    for kind, span, step in lizmon.KINDS:
        got = body[f"summary:{kind}:cpu"]["averages"]
        want = brute_force(ts, values, span, step, NOW)
        assert [{k: p[k] for k in ("start-sec", "end-sec", "num-samples", "min", "max")} for p in got] == \
               [{k: p[k] for k in ("start-sec", "end-sec", "num-samples", "min", "max")} for p in want], kind
        # sums come from buckets (another addition order): the 2-decimal rounding may differ by one
        assert np.allclose([p["avg"] for p in got], [p["avg"] for p in want], rtol=0, atol=0.0100001), kind
        assert all(p["interval-size-sec"] == step for p in got)
    return body


def test_boundary_samples_fall_in_the_slot_they_end(open_app: App) -> None:
    m = math.floor(NOW / 60) * 60  # a minute boundary just before now
    h = math.floor(NOW / 3600) * 3600
    ts = [m - 120, m - 60, m - 59.5, m, m + 0.25,  # on and beside minute edges
          h, h - 3600, h - 1800, h + 1e-6,  # on hour edges (and one microsecond after)
          math.floor((NOW - 3600) / 60) * 60,  # exactly the first by-minute slot's start: not in it
          math.floor((NOW - 3600) / 60) * 60 + 60,  # its end: in it
          math.floor((NOW - 86400) / 3600) * 3600 + 3600,
          NOW]
    values = [float(i + 1) for i in range(len(ts))]
    _post(open_app, "edge", ts, values)
    body = _compare(open_app, "edge", ts, values)
    minute = {p["start-sec"]: p for p in body["summary:by-minute:cpu"]["averages"]}
    assert minute[m - 60]["num-samples"] == 2  # (m-60, m] holds m-59.5 and m itself, not m-60
    assert minute[m - 60]["max"] == 4.0 and minute[m - 60]["min"] == 3.0


def test_random_samples_match_lizmon_exactly(open_app: App) -> None:
    rng = np.random.default_rng(7)
    # whole seconds, as Lizmon's monitor posts them: one in sixty lands on a minute edge
    ts = sorted(set(np.round(NOW - rng.uniform(0, 90000, 3000)).tolist()))
    values = np.round(rng.uniform(0, 100, len(ts)), 3).tolist()
    _post(open_app, "rand", ts, values)
    _compare(open_app, "rand", ts, values)


def test_tiers_answer_when_no_sample_is_on_an_edge(open_app: App) -> None:
    ts = [NOW - 3000.5 + 37.25 * i for i in range(80)]
    values = [float(i % 7) for i in range(80)]
    _post(open_app, "tiers", ts, values)
    _compare(open_app, "tiers", ts, values)
    counting = CountingSeries(open_app.push.series)
    labels = lizmon.host_labels(counting, "tiers", [])
    lizmon.summaries(counting, labels, None, now=NOW)
    assert counting.raw_reads == 0
    # one sample on a minute edge (not an hour edge): only the by-minute slots beside it are
    # read from raw samples, and the answer still matches Lizmon's rule
    edge = math.floor(NOW / 60) * 60 - 600
    assert edge % 3600
    _post(open_app, "tiers", [edge], [50.0])
    lizmon.summaries(counting, labels, None, now=NOW)
    assert counting.raw_reads == 1
    _compare(open_app, "tiers", [*ts, edge], [*values, 50.0])


def test_at_most_sixty_points_and_only_recent(open_app: App) -> None:
    ts = [NOW - 90 * 60 + 60 * i + 0.5 for i in range(90)] + [NOW - 2 * 86400]
    values = [1.0] * 91
    _post(open_app, "many", ts, values)
    body = _compare(open_app, "many", ts, values)
    assert body["summary:by-minute:cpu"]["average-count"] == 60
    # the sample two days old is in neither summary
    assert sum(p["num-samples"] for p in body["summary:by-hour:cpu"]["averages"]) == 90
