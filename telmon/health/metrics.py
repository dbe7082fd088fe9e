"""`/metrics`: telmon's figures in the Prometheus text format, through prometheus_client.

Each app gets its own ``CollectorRegistry``: the library's process-wide default registry is the
source of its most repeated bug ("Duplicated timeseries" when a second app or test registers
the same names), and STYLE.md wants no process-wide singletons.  Figures are read at scrape
time from the health snapshot (a custom collector, the library's own extension point), so
nothing is counted twice; only request latencies are observed as they happen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from telmon import __version__
from telmon.health import HealthSettings
from telmon.health.snapshot import Component, IngestLag, snapshot, store_reachable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Request latencies: from a cached JSON answer (~1 ms) to a slow graph or a big export.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class SourceCounts:
    """Files, rejections and arrivals per feed (source) committed by this process.

    A store record hook notes each file inside the write transaction; the ingest worker's
    ``on_commit`` moves the notes into the counts only once the transaction committed, so a
    rolled-back write is never counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._staged: dict[int, tuple[str, int, bool]] = {}
        self.files: dict[str, int] = {}
        self.rejected: dict[str, int] = {}
        self.arrivals: dict[str, int] = {}

    def hook(self, conn: Any, rec: Any, file_id: int, arrivals: list[Any]) -> None:
        with self._lock:
            self._staged[file_id] = (str(rec.feed or "files"), len(arrivals), not arrivals)

    def committed(self, results: Iterable[Any]) -> None:
        with self._lock:
            for r in results:
                if r.file_id is None or r.status == "duplicate":
                    continue
                staged = self._staged.pop(r.file_id, None)
                if staged is None:
                    continue
                feed, n, rejected = staged
                self.files[feed] = self.files.get(feed, 0) + 1
                self.arrivals[feed] = self.arrivals.get(feed, 0) + n
                if rejected:
                    self.rejected[feed] = self.rejected.get(feed, 0) + 1
            if len(self._staged) > 100_000:  # notes of writes that rolled back, never committed
                self._staged.clear()

    def snapshot(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        with self._lock:
            return dict(self.files), dict(self.rejected), dict(self.arrivals)


def install_counters(service: Any) -> None:
    """Per-source counts and the ingest lag tracker on ``service`` (once)."""
    if getattr(service, "source_counts", None) is not None:
        return
    counts = SourceCounts()
    hooks = getattr(service.store, "record_hooks", None)
    worker = getattr(service, "worker", None)
    if hooks is not None and worker is not None:
        hooks.append(counts.hook)
        previous = worker.on_commit

        def on_commit(results: Any) -> None:
            counts.committed(results)
            if previous is not None:
                previous(results)

        worker.on_commit = on_commit
    service.source_counts = counts
    if worker is not None and getattr(service, "ingest_lag", None) is None:
        service.ingest_lag = IngestLag(worker, getattr(service, "now", time.time))


def _counter(name: str, doc: str, labels: list[str] | None = None) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels)


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class TelmonCollector:
    """Reads a service's health snapshot at each scrape (prometheus_client's Collector protocol)."""

    def __init__(self, service: Any, settings: HealthSettings, clock: Callable[[], float]) -> None:
        self.service = service
        self.settings = settings
        self.clock = clock

    def collect(self) -> Iterable[Metric]:
        now = self.clock()
        comps = snapshot(self.service, now=now, stuck_after=self.settings.health_stuck_after, check_store=False)
        info = _gauge("telmon_build_info", "telmon's version (always 1).", ["version"])
        info.add_metric([__version__], 1)
        yield info
        up = _gauge("telmon_store_up", "1 when the store answers a read.")
        up.add_metric([], 0 if store_reachable(self.service.store) else 1)
        yield up
        yield from self._ingest(comps)
        yield from self._sources()
        yield from self._components(comps)
        yield from self._alerts()

    def _ingest(self, comps: list[Component]) -> Iterable[Metric]:
        ingest = next((c for c in comps if c.kind == "ingest"), None)
        if ingest is None:
            return
        f = ingest.figures
        for name, key, doc in (
            ("telmon_files_ingested", "files", "Files recorded (accepted, partly accepted or rejected)."),
            ("telmon_files_rejected", "rejected", "Files rejected whole."),
            ("telmon_files_duplicate", "duplicates", "Files seen again with the same content (nothing recorded)."),
            ("telmon_arrivals_ingested", "arrivals", "Arrivals recorded (a file may hold many, e.g. LRGS messages)."),
        ):
            m = _counter(name, doc)
            m.add_metric([], f.get(key) or 0)
            yield m
        q = _gauge("telmon_ingest_queue_files", "Files waiting for the ingest worker.")
        q.add_metric([], f.get("queue") or 0)
        yield q
        lag = _gauge("telmon_ingest_lag_seconds", "How long files have waited in the ingest queue (0: empty).")
        lag.add_metric([], ingest.lag_s or 0.0)
        yield lag

    def _sources(self) -> Iterable[Metric]:
        counts = getattr(self.service, "source_counts", None)
        if counts is None:
            return
        files, rejected, arrivals = counts.snapshot()
        for name, data, doc in (
            ("telmon_source_files", files, "Files recorded per source (feed) since start."),
            ("telmon_source_rejected", rejected, "Files rejected per source (feed) since start."),
            ("telmon_source_arrivals", arrivals, "Arrivals recorded per source (feed) since start."),
        ):
            m = _counter(name, doc, ["feed"])
            for feed, n in sorted(data.items()):
                m.add_metric([feed], n)
            yield m

    def _components(self, comps: list[Component]) -> Iterable[Metric]:
        up = _gauge("telmon_component_up", "1 while a component runs (0: down or stopped).", ["kind", "name"])
        errors = _gauge("telmon_component_degraded", "1 while a component is degraded or down.", ["kind", "name"])
        lag = _gauge("telmon_component_lag_seconds", "A component's lag (tailer: since its last look; sink: the "
                     "oldest row waiting; evaluator: since its last pass).", ["kind", "name"])
        for c in comps:
            if c.kind == "store":
                continue
            up.add_metric([c.kind, c.name], 1 if c.state in ("ok", "degraded") else 0)
            errors.add_metric([c.kind, c.name], 1 if c.state in ("degraded", "down") else 0)
            if c.lag_s is not None:
                lag.add_metric([c.kind, c.name], c.lag_s)
        yield up
        yield errors
        yield lag
        tails = [c for c in comps if c.kind == "tailer"]
        if tails:
            lines = _counter("telmon_tail_lines", "Log lines read by the tailer.", ["machine"])
            nbytes = _counter("telmon_tail_bytes", "Log bytes read by the tailer.", ["machine"])
            pending = _gauge("telmon_tail_pending_bytes", "Log bytes not read yet.", ["machine"])
            for c in tails:
                lines.add_metric([c.name], c.figures.get("lines") or 0)
                nbytes.add_metric([c.name], c.figures.get("bytes") or 0)
                pending.add_metric([c.name], c.figures.get("pending_bytes") or 0)
            yield lines
            yield nbytes
            yield pending
        watchers = [c for c in comps if c.kind == "watcher"]
        if watchers:
            events = _counter("telmon_watcher_files", "Complete files a watcher handed to ingest.", ["path"])
            overflows = _counter("telmon_watcher_overflows", "inotify queue overflows (each forces a rescan).",
                                 ["path"])
            for c in watchers:
                events.add_metric([c.name], c.figures.get("files") or 0)
                overflows.add_metric([c.name], c.figures.get("overflows") or 0)
            yield events
            yield overflows
        push = [c for c in comps if c.kind == "push-writer"]
        if push:
            samples = _counter("telmon_push_samples", "Pushed samples fed into the rollups.")
            samples.add_metric([], push[0].figures.get("samples") or 0)
            yield samples
        sinks = [c for c in comps if c.kind == "sink"]
        if sinks:
            depth = _gauge("telmon_outbox_pending", "Outbox rows waiting for their sink.", ["sink"])
            age = _gauge("telmon_outbox_oldest_age_seconds", "Age of the oldest outbox row waiting.", ["sink"])
            done = _counter("telmon_outbox_delivered", "Outbox rows delivered.", ["sink"])
            for c in sinks:
                depth.add_metric([c.name], c.figures.get("pending") or 0)
                age.add_metric([c.name], c.lag_s or 0.0)
                done.add_metric([c.name], c.figures.get("delivered") or 0)
            yield depth
            yield age
            yield done
        notifiers = [c for c in comps if c.kind == "notifier"]
        if notifiers:
            queued = _gauge("telmon_alert_notifications_queued", "Notifications waiting for delivery.", ["channel"])
            failed = _gauge("telmon_alert_notifications_failed_24h",
                            "Notifications given up on over the last 24 hours.", ["channel"])
            sent = _counter("telmon_alert_notifications_sent", "Notifications delivered since start.", ["channel"])
            attempts = _counter("telmon_alert_notification_failures",
                                "Failed delivery attempts since start (each retried or given up).", ["channel"])
            for c in notifiers:
                queued.add_metric([c.name], c.figures.get("queued") or 0)
                failed.add_metric([c.name], c.figures.get("failed_24h") or 0)
                sent.add_metric([c.name], c.figures.get("sent") or 0)
                attempts.add_metric([c.name], c.figures.get("attempts_failed") or 0)
            yield queued
            yield failed
            yield sent
            yield attempts

    def _alerts(self) -> Iterable[Metric]:
        alerts = getattr(self.service, "alerts", None)
        if alerts is None:
            return
        ev = alerts.evaluator
        states = _gauge("telmon_alerts", "Alerts per rule and state (pending, firing).", ["rule", "severity", "state"])
        severity = {r.name: r.severity for r in ev.rules}
        for rule, counts in sorted(ev.rule_counts().items()):
            for state, n in sorted(counts.items()):
                states.add_metric([rule, severity.get(rule, ""), state], n)
        yield states
        errs = _gauge("telmon_alert_rule_error", "1 while a rule cannot be evaluated (its source failed).", ["rule"])
        for r in ev.rules:
            errs.add_metric([r.name], 1 if r.name in ev.errors else 0)
        yield errs
        if ev.last is not None:
            secs = _gauge("telmon_alert_evaluation_seconds", "Duration of the last evaluation pass.")
            secs.add_metric([], ev.last.seconds)
            yield secs
            at = _gauge("telmon_alert_last_evaluation_timestamp_seconds", "When the last pass ran (epoch).")
            at.add_metric([], ev.last.at)
            yield at


class LatencyMiddleware:
    """Pure ASGI middleware timing each HTTP request into a Histogram labelled by method, route
    template (``/api/v1/stations/{code}``, never the raw path: bounded cardinality) and status."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def timed_send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or getattr(route, "path_format", None) or "(unmatched)"
            self.histogram.labels(scope.get("method", "?"), path, str(status[0])).observe(time.perf_counter() - start)


class Metrics:
    """One app's registry: the telmon collector and the request-latency histogram."""

    def __init__(self, service: Any, settings: HealthSettings | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.service = service
        self.settings = settings or HealthSettings()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(TelmonCollector(service, self.settings, clock or getattr(service, "now", time.time)))
        self.latency = Histogram("telmon_http_request_duration_seconds", "HTTP request latency.",
                                 ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry)

    def install(self, app: Any) -> None:
        """Time every request of ``app`` (call before it serves)."""
        app.add_middleware(LatencyMiddleware, histogram=self.latency)
        app.state.metrics = self

    def render(self) -> bytes:
        return generate_latest(self.registry)
