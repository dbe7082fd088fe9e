"""Clustering of the real energy-sensor events: the same clusters as a direct scikit-learn run
on the same features, recomputed in the background every N stored events without blocking."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from telmon.push import clusters
from tests.push.conftest import App, lines
from tests.support import TIMEOUT, wait_for

_KV = re.compile(r"(Active|Reactive|Appearent|Current|Voltage)=(-?[\d.]+)")


def features_by_hand(text: list[str]) -> np.ndarray:
    """The eight features read with a regex (independently of telmon's parser): the five
    electric values with units stripped, then the first three peaks."""
    rows = []
    for line in text:
        kv = dict(_KV.findall(line))
        peaks = line.split("Peaks: ")[1].split(";")[:3]
        rows.append([float(kv[k]) for k in ("Active", "Reactive", "Appearent", "Current", "Voltage")]
                    + [float(p) for p in peaks])
    return np.array(rows)


def direct_sklearn(features: np.ndarray) -> list[int]:
    from sklearn.cluster import MeanShift, estimate_bandwidth

    bandwidth = estimate_bandwidth(features, quantile=0.2, n_samples=200)
    labels = MeanShift(bandwidth=bandwidth, bin_seeding=True, cluster_all=False).fit_predict(features)
    return sorted(np.bincount(labels + 1).tolist())


def test_cluster_function_equals_direct_sklearn() -> None:
    feats = features_by_hand(lines())
    labels, _ = clusters.cluster(feats)
    assert sorted(np.bincount(labels + 1).tolist()) == direct_sklearn(feats)


def test_store_1000_events_then_summary_equals_direct_sklearn(app_factory) -> None:
    app: App = app_factory(push_auth="open", push_cluster_every=1000)
    text = lines()
    assert len(text) == 1000
    for i, line in enumerate(text):
        app.clock.t += 0.001
        r = app.client.post("/log/store", content=line, headers={"content-type": "text/plain"})
        assert r.status_code == 200, (i, r.text)
    # the 1000th stored event triggered the run; wait for the worker, never for a fixed time
    wait_for(lambda: app.push.clusters.runs >= 1, what="the clustering run")
    summary = app.client.get("/clusters/summary").json()
    feats = features_by_hand(text)
    sizes = sorted(c["count"] for c in summary["clusters"])
    assert sizes == direct_sklearn(feats)
    assert len(summary["clusters"]) == len(direct_sklearn(feats))
    assert summary["events"] == 1000 and summary["seconds"] >= 0 and summary["computed_at"]
    assert set(summary["clusters"][0]) == {"label", "count", "avg_power_active_w", "avg_power_reactive_var",
                                           "avg_power_apparent_va", "avg_line_current_a", "avg_line_voltage_v"}
    # the averages are those of the events in each cluster
    from sklearn.cluster import MeanShift, estimate_bandwidth

    labels = MeanShift(bandwidth=estimate_bandwidth(feats, quantile=0.2, n_samples=200), bin_seeding=True,
                       cluster_all=False).fit_predict(feats)
    for c in summary["clusters"]:
        members = feats[labels == c["label"]]
        assert c["count"] == len(members)
        assert c["avg_power_active_w"] == pytest.approx(members[:, 0].mean())
        assert c["avg_line_current_a"] == pytest.approx(members[:, 3].mean())
    assert any(c["label"] == -1 for c in summary["clusters"])  # outliers are labelled -1


def test_summary_before_any_run_is_empty(open_app: App) -> None:
    assert open_app.client.get("/clusters/summary").json()["clusters"] == []


@pytest.mark.slow
def test_clustering_in_a_child_process_does_not_block_requests(app_factory) -> None:
    """With the real process pool: requests keep being answered while MeanShift runs."""
    app: App = app_factory(push_auth="open", push_cluster_every=500, push_cluster_process=True)
    text = lines()
    for line in text[:499]:
        app.clock.t += 0.001
        assert app.client.post("/log/store", content=line, headers={"content-type": "text/plain"}).status_code == 200
    app.clock.t += 0.001
    app.client.post("/log/store", content=text[499], headers={"content-type": "text/plain"})
    answered = 0
    started = time.monotonic()
    while app.push.clusters.runs == 0 and time.monotonic() - started < TIMEOUT:
        r = app.client.get("/clusters/summary")
        assert r.status_code == 200
        answered += 1
    assert app.push.clusters.runs == 1
    assert answered > 5  # the summary kept answering (from the last result) during the run
    assert sum(c["count"] for c in app.client.get("/clusters/summary").json()["clusters"]) == 500
