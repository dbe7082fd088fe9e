"""Where the capabilities plug into one running telmon: their workers on the Service, their
routes on the app. ``telmon serve`` calls both; tests that want the whole server do too.

Each capability keeps its code, settings and routes beside itself (telmon/push, telmon/sinks,
...); this module only names them, so the order of installation is visible in one place.
"""

from __future__ import annotations

from typing import Any

from telmon.config import Config
from telmon.service import Service


def install_capabilities(service: Service, config: Config) -> None:
    """Start the capabilities' background workers on ``service`` (stopped by service.stop()).

    The schedule slots and the outbox are not here: Service installs them itself, because
    they must run on every ingest, one-shot commands included.
    """
    from telmon import alerts, push
    from telmon.tail.service import install as install_tail

    push.install(service, config)      # push writer, clustering worker, in-serve agent
    install_tail(service, config)      # MetPX log tailers (when tail_dirs is set) and pusher
    alerts.install(service, config)    # rule evaluator and notifiers


def build_app(service: Service) -> Any:
    """The ASGI app: the core API and pages, every capability's routes, and the fast front
    for the hot push routes."""
    from telmon import health, push
    from telmon.api.app import create_app
    from telmon.api.dashboard import router as dashboard_router
    from telmon.api.stations_pages import router as stations_router
    from telmon.api.transfers import router as transfers_router
    from telmon.rollup.api import router as series_router

    app = create_app(service)
    app.include_router(series_router)
    app.include_router(transfers_router)
    app.include_router(stations_router)
    app.include_router(dashboard_router)
    push.install_routes(app, service)
    health.install(app, service)       # /healthz, /readyz, /metrics, request latencies
    if getattr(service, "alerts", None) is not None:
        from telmon.alerts import api as alerts_api

        app.include_router(alerts_api.router(service.alerts))
    return push.front(app, service)
