"""Clustering of energy-sensor events (``GET /clusters/summary``), recomputed in the background.

As the old logservice did (energy_sensors/logservice/clustering.py): scikit-learn's MeanShift
with ``bin_seeding=True`` and ``cluster_all=False`` (points no kernel reaches are outliers,
label -1), the bandwidth estimated with ``quantile=0.2`` over 200 samples, on eight features
per event: active, reactive and apparent power, current, voltage and the first three peaks.
Unlike it, the run never blocks a request: a worker thread waits for every N stored events,
and the computation itself runs in a separate process (so it does not hold the server's
interpreter lock); requests read the last stored result.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from telmon.push.schema import ensure_schema
from telmon.timeutil import iso

log = logging.getLogger("telmon.push.clusters")

QUANTILE = 0.2
BANDWIDTH_SAMPLES = 200
FEATURES = ("power_active_w", "power_reactive_var", "power_apparent_va", "line_current_a", "line_voltage_v")
SUMMARY_FIELDS = ("avg_power_active_w", "avg_power_reactive_var", "avg_power_apparent_va", "avg_line_current_a",
                  "avg_line_voltage_v")


@dataclass(slots=True)
class ClusterResult:
    labels: np.ndarray  # per event: its cluster (-1 outlier)
    bandwidth: float | None
    seconds: float

    def summary(self, features: np.ndarray) -> list[dict[str, Any]]:
        """Per cluster label (ascending, -1 first): size and mean of the five electric features."""
        out = []
        for label in np.unique(self.labels).tolist():
            members = features[self.labels == label]
            row: dict[str, Any] = {"label": int(label), "count": int(len(members))}
            for i, name in enumerate(SUMMARY_FIELDS):
                row[name] = float(members[:, i].mean())
            out.append(row)
        return out


def cluster(features: np.ndarray) -> tuple[np.ndarray, float | None]:
    """MeanShift labels of the rows of ``features`` (n x 8) and the bandwidth used.

    Pure: the same features give the same answer as a direct scikit-learn run.  Fewer than two
    events, or a zero bandwidth (all events alike), make one cluster."""
    from sklearn.cluster import MeanShift, estimate_bandwidth

    n = len(features)
    if n < 2:
        return np.zeros(n, np.int64), None
    bandwidth = float(estimate_bandwidth(features, quantile=QUANTILE, n_samples=min(BANDWIDTH_SAMPLES, n)))
    if not bandwidth > 0:
        return np.zeros(n, np.int64), bandwidth
    ms = MeanShift(bandwidth=bandwidth, bin_seeding=True, cluster_all=False)
    return ms.fit_predict(features).astype(np.int64), bandwidth


def _cluster_timed(features: np.ndarray) -> tuple[np.ndarray, float | None, float]:
    t0 = time.perf_counter()
    labels, bandwidth = cluster(features)
    return labels, bandwidth, time.perf_counter() - t0


def load_features(store: Any, limit: int) -> tuple[np.ndarray, int]:
    """The newest ``limit`` events' features in id order, and the newest event id (0: none)."""
    with store._read() as conn:
        rows = conn.execute(
            f"SELECT id, {', '.join(FEATURES)}, peaks FROM push_sensor_events ORDER BY id DESC LIMIT ?",
            (int(limit),)).fetchall()
    rows.reverse()
    if not rows:
        return np.zeros((0, 8)), 0
    feats = np.array([[*r[1:6], *orjson.loads(r[6])[:3]] for r in rows], dtype=np.float64)
    return feats, int(rows[-1][0])


class ClusterWorker:
    """Recomputes the clusters after every ``every`` stored events; keeps the last result.

    ``notify(n)`` is all a request path calls (it only counts); the worker thread loads the
    features, runs MeanShift (in a child process when ``use_process``) and stores the summary
    in ``push_cluster_runs`` with its computation time."""

    def __init__(self, store: Any, *, every: int = 1000, max_events: int = 20_000, use_process: bool = True,
                 now: Callable[[], float] = time.time) -> None:
        ensure_schema(store)
        self.store = store
        self.every = max(1, int(every))
        self.max_events = int(max_events)
        self.use_process = use_process
        self.now = now
        self.runs = 0
        self.last_error: str | None = None
        self._pending = 0
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        # events stored since the last run (e.g. before a restart) count towards the next one
        with self.store._read() as conn:
            last = conn.execute("SELECT coalesce(max(last_event_id), 0) FROM push_cluster_runs").fetchone()[0]
            since = conn.execute("SELECT count(*) FROM push_sensor_events WHERE id > ?", (last,)).fetchone()[0]
        self.notify(int(since))
        self._thread = threading.Thread(target=self._run, name="telmon-push-clusters", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(60)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def notify(self, n_events: int) -> None:
        """``n_events`` more events were stored; wake the worker when a run is due."""
        with self._lock:
            self._pending += n_events
            if self._pending >= self.every:
                self._pending = 0
                self._idle.clear()
                self._wanted.set()

    def request(self) -> None:
        """Ask for a run now (CLI, tests)."""
        with self._lock:
            self._pending = 0
            self._idle.clear()
            self._wanted.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wanted.wait()
            if self._stop.is_set():
                break
            self._wanted.clear()
            try:
                self.run_once()
            except Exception as exc:  # keep serving the last result; say why in status
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("clustering failed")
            if not self._wanted.is_set():
                self._idle.set()
        self._idle.set()

    def run_once(self) -> dict[str, Any] | None:
        """Compute and store one result now (in this thread); None when there are no events."""
        features, last_id = load_features(self.store, self.max_events)
        if not len(features):
            return None
        if self.use_process:
            if self._pool is None:
                # spawn, not fork: the server has threads (and SQLite handles) a fork would copy
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            labels, bandwidth, seconds = self._pool.submit(_cluster_timed, features).result()
        else:
            labels, bandwidth, seconds = _cluster_timed(features)
        result = ClusterResult(labels, bandwidth, seconds)
        clusters = result.summary(features)
        computed_at = self.now()
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO push_cluster_runs(computed_at, seconds, events, last_event_id, bandwidth, summary) "
                "VALUES (?,?,?,?,?,?)",
                (computed_at, seconds, len(features), last_id, bandwidth, orjson.dumps({"clusters": clusters}).decode()))
            # only the last results matter; keep a short history for the status page
            conn.execute("DELETE FROM push_cluster_runs WHERE id <= (SELECT max(id) FROM push_cluster_runs) - 10")
        self.runs += 1
        log.info("clusters: %d events -> %d clusters in %.2fs", len(features), len(clusters), seconds)
        return summary(self.store)


def summary(store: Any) -> dict[str, Any]:
    """The last stored result in the old JSON shape, plus when and how it was computed."""
    with store._read() as conn:
        row = conn.execute("SELECT computed_at, seconds, events, last_event_id, bandwidth, summary "
                           "FROM push_cluster_runs ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return {"clusters": [], "computed_at": None, "seconds": None, "events": 0, "bandwidth": None}
    body = orjson.loads(row[5])
    body.update({"computed_at": iso(row[0]), "seconds": round(row[1], 4), "events": row[2],
                 "last_event_id": row[3], "bandwidth": row[4]})
    return body
