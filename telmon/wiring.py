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
    """Start the capabilities' background workers on ``service`` (stopped by service.stop())."""
    from telmon import push
    from telmon.tail.service import install as install_tail

    from telmon import alerts

    push.install(service, config)
    install_tail(service, config)
    alerts.install(service, config)


def build_app(service: Service) -> Any:
    """The ASGI app: the core API and pages, every capability's routes, and the fast front
    for the hot push routes."""
    from telmon import push
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
    from telmon import health

    health.install(app, service)
    if getattr(service, "alerts", None) is not None:
        from telmon.alerts import api as alerts_api

        app.include_router(alerts_api.router(service.alerts))
    return push.front(app, service)
