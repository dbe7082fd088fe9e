"""Pushed metrics: the host agent, the Lizmon and energy-sensor receivers, native ingest, tokens.

Wiring (from ``telmon serve``)::

    service = Service(cfg); service.demo = ...        # as now
    app = create_app(service)
    push.install(service, cfg)                        # writer, clustering worker, in-serve agent
    push.install_routes(app, service)                 # the routes (see routes.py)
    uvicorn.run(push.front(app, service), ...)        # optional: hot POSTs skip FastAPI's middleware

``service.stop()`` then also drains the writer (every queued request is committed and
answered) and stops the workers.  Series naming: ``host.<host>.<label>`` for the agent, the
Lizmon routes and native host snapshots; ``sensor.<device id>.<field>`` for energy sensors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from telmon.push.settings import SETTINGS, PushSettings

log = logging.getLogger("telmon.push")

__all__ = ["SETTINGS", "Gate", "Push", "PushSettings", "front", "install", "install_routes"]


class Gate:
    """Who may write and read: the bearer token of a request against the push settings."""

    def __init__(self, tokens: Any, settings: PushSettings, *, demo: Callable[[], bool] = lambda: False,
                 now: Callable[[], float] = time.time) -> None:
        self.tokens = tokens
        self.settings = settings
        self._demo = demo
        self.now = now

    @property
    def writes_need_token(self) -> bool:
        mode = self.settings.push_auth
        if mode == "auto":
            return not self._demo()
        return mode == "tokens"

    @staticmethod
    def bearer(request: Request) -> str | None:
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            from telmon.push.errors import Unauthorized

            raise Unauthorized("the Authorization header must read 'Bearer <token>'")
        return value.strip()

    def write_token(self, request: Request) -> Any:
        """The request's valid token, or None when writes are open.  Raises Unauthorized."""
        if not self.writes_need_token:
            return None
        return self.tokens.verify(self.bearer(request), now=self.now())

    def check_read(self, request: Request) -> None:
        if self.settings.push_read_auth:
            self.tokens.verify(self.bearer(request), now=self.now())


@dataclass
class Push:
    """What ``install`` started; ``service.push``."""

    service: Any
    settings: PushSettings
    series: Any
    writer: Any
    tokens: Any
    gate: Gate
    judge: Any
    clusters: Any
    now: Callable[[], float] = time.time
    agent: Any = None
    agent_thread: threading.Thread | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def store(self) -> Any:
        return self.series.store

    def stop(self) -> None:
        """Stop the agent, commit and answer every queued write, stop clustering."""
        if self._stopped:
            return
        self._stopped = True
        if self.agent is not None:
            self.agent.stop()
            if self.agent_thread is not None:
                self.agent_thread.join(30)
        self.writer.stop()
        self.clusters.stop()

    def status(self) -> dict[str, Any]:
        now = self.now()
        return {
            "writer": {**self.writer.stats.to_json(), "queued": self.writer.depth},
            "clusters": {"runs": self.clusters.runs, "every": self.clusters.every,
                         "last_error": self.clusters.last_error},
            "auth": {"writes_need_token": self.gate.writes_need_token, "reads_need_token": self.settings.push_read_auth,
                     "active_tokens": self.tokens.count_active(now=now)},
            "agent": None if self.agent is None else {"host": self.agent.host, "collected": self.agent.stats.collected,
                                                      "last_error": self.agent.stats.last_error},
        }


def install(service: Any, settings: Any = None, *, now: Callable[[], float] | None = None) -> Push:
    """Start the push writer and the clustering worker on ``service`` (and the in-serve agent
    when ``agent_host`` is set); ``service.stop()`` stops them.  Idempotent: a second call
    returns the first one's Push.  ``settings``: a Config, a mapping or PushSettings."""
    existing = getattr(service, "push", None)
    if isinstance(existing, Push):
        return existing
    from telmon.push.clusters import ClusterWorker
    from telmon.push.samples import Judge
    from telmon.push.schema import ensure_schema
    from telmon.push.tokens import TokenStore
    from telmon.push.writer import PushWriter

    s = settings if isinstance(settings, PushSettings) else PushSettings.from_config(
        settings if settings is not None else getattr(service, "config", None))
    clock = now or getattr(service, "now", time.time)
    series = getattr(service, "series", None)
    if series is None:
        from telmon.rollup.store import SeriesStore

        series = service.series = SeriesStore(service.store)
    ensure_schema(series.store)
    cluster_worker = ClusterWorker(series.store, every=s.push_cluster_every, max_events=s.push_cluster_max_events,
                                   use_process=s.push_cluster_process, now=clock)
    writer = PushWriter(series, group_max=s.push_group_max, now=clock, on_events=cluster_worker.notify)
    tokens = TokenStore(series.store, cache_seconds=s.push_token_cache)
    gate = Gate(tokens, s, demo=lambda: getattr(service, "demo", None) is not None, now=clock)
    push = Push(service, s, series, writer, tokens, gate, Judge(series), cluster_worker, now=clock)
    writer.start()
    cluster_worker.start()
    if s.agent_host:
        _start_agent(push, s)
    _chain_stop(service, push.stop)
    service.push = push
    log.info("push receivers ready: writes %s", "need a token" if gate.writes_need_token else "are open")
    return push


def _start_agent(push: Push, s: PushSettings) -> None:
    import tempfile

    from telmon.push.agent import Agent, DirectSender
    from telmon.push.spool import Spool

    spool_dir = tempfile.mkdtemp(prefix="telmon-agent-")  # direct writes rarely wait: a scratch spool will do
    push.agent = Agent(s.agent_host, DirectSender(push.writer, now=push.now), Spool(spool_dir),
                       interval=s.agent_interval, now=push.now)
    push.agent_thread = threading.Thread(target=push.agent.run, name="telmon-agent", daemon=True)
    push.agent_thread.start()


def _chain_stop(service: Any, fn: Callable[[], None]) -> None:
    """Stop after the service's own stop, so requests still in flight were answered first."""
    previous = getattr(service, "stop", None)

    def stop() -> None:
        if previous is not None:
            previous()
        fn()

    service.stop = stop


def install_routes(app: Any, service: Any) -> Push:
    """Add the push routes to the telmon app (installing the workers first if not done)."""
    from telmon.push.routes import build_routes

    push = install(service)
    for route in build_routes(push):
        app.router.routes.append(route)
    return push


def front(app: Any, service: Any) -> Any:
    """An ASGI app that sends the hot write routes (POST /api/v1/samples, /api/perf/<host>/<epoch>,
    /log/store) straight to a plain Starlette app and everything else to ``app``.

    FastAPI's middleware stack (telemetry, body limit, exit stack) cost ~120 us of the event
    loop's ~320 us per 100-sample request (measured in-process); the answers are the same JSON.
    Serving ``app`` alone works too: ``install_routes`` mounts the same routes there."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse

    from telmon.errors import TelmonError
    from telmon.push.routes import build_routes

    push = install(service)
    hot_paths = {"/api/v1/samples", "/log/store"}

    async def telmon_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TelmonError)
        return JSONResponse(exc.to_json(), status_code=exc.status)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "internal error; the server log has the details", "kind": "InternalError"},
                            status_code=500)

    hot = Starlette(routes=[r for r in build_routes(push) if "POST" in (r.methods or ())],
                    exception_handlers={TelmonError: telmon_error, Exception: unexpected})

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if path in hot_paths or (path.startswith("/api/perf/") and path.count("/") == 4):
                await hot(scope, receive, send)
                return
        await app(scope, receive, send)

    return asgi
