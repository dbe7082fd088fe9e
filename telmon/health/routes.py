"""The health routes: liveness, readiness, Prometheus metrics and the component list."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from telmon import __version__
from telmon.health.metrics import CONTENT_TYPE, Metrics
from telmon.health.snapshot import ready, snapshot
from telmon.timeutil import iso


def report(service: Any, *, now: float, stuck_after: float) -> dict[str, Any]:
    """The body of ``GET /api/v1/health`` (what `telmon status` prints)."""
    comps = snapshot(service, now=now, stuck_after=stuck_after)
    ok, checks = ready(comps, stuck_after=stuck_after)
    return {"version": __version__, "now": iso(now), "ready": ok, "checks": checks,
            "uptime_s": round(now - getattr(service, "started_at", now), 1),
            "components": [c.to_json() for c in comps]}


def router(service: Any, metrics: Metrics) -> APIRouter:
    r = APIRouter(tags=["health"])
    clock = getattr(service, "now", time.time)
    stuck = metrics.settings.health_stuck_after

    @r.get("/healthz", summary="Liveness: the process answers")
    def healthz() -> Any:
        return {"ok": True, "version": __version__, "uptime_s": round(clock() - getattr(service, "started_at", clock()), 1)}

    @r.get("/readyz", summary="Readiness: store reachable, threads alive, outbox not stuck (503 if not)")
    def readyz() -> Any:
        comps = snapshot(service, now=clock(), stuck_after=stuck)
        ok, checks = ready(comps, stuck_after=stuck)
        body = {"ready": ok, "checks": checks, "failing": [c for c in checks if not c["ok"]]}
        return JSONResponse(body, status_code=200 if ok else 503)

    @r.get("/metrics", summary="Prometheus text exposition format", response_class=Response)
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @r.get("/api/v1/health", summary="Each watcher, tailer, agent, sink and notifier with its lag and last error")
    def health() -> Any:
        return report(service, now=clock(), stuck_after=stuck)

    return r
