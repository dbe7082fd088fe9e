"""telmon's own health (issue 9): `GET /healthz` (liveness), `GET /readyz` (store reachable,
threads alive, outbox not stuck), `GET /metrics` (Prometheus text format, one registry per
app), `GET /api/v1/health` and `telmon status`.

``snapshot`` lists the components of a running service; ``metrics`` turns them into
Prometheus families at scrape time and times the HTTP requests; ``routes`` serves them;
``cli`` prints them.  Wiring (after ``create_app(service)``, before the app serves)::

    health.install(app, service)     # routes + request-latency middleware + ingest counters
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telmon.errors import ConfigError

# (name, default, help, type): the lines to add to telmon.config.SETTINGS as Setting(*row).
SETTINGS: tuple[tuple[str, Any, str, type], ...] = (
    ("health_stuck_after", 600.0, "Seconds the oldest outbox row may wait before /readyz calls the outbox stuck.",
     float),
)


@dataclass(frozen=True, slots=True)
class HealthSettings:
    health_stuck_after: float = 600.0


def settings_from(config: Any = None) -> HealthSettings:
    """From a telmon Config (its ``values``), a mapping, or nothing (the defaults)."""
    values = config if isinstance(config, dict) else (getattr(config, "values", None) or {})
    try:
        stuck = float(values.get("health_stuck_after", 600.0))
    except (TypeError, ValueError):
        raise ConfigError("expected a number of seconds", key="health_stuck_after") from None
    return HealthSettings(stuck)


def install(app: Any, service: Any, config: Any = None) -> Any:
    """Add the health routes and the request-latency middleware to ``app`` and start counting
    ingest per source on ``service``.  Call before the app serves its first request.
    Returns the app's :class:`telmon.health.metrics.Metrics` (``app.state.metrics``)."""
    from telmon.health.metrics import Metrics, install_counters
    from telmon.health.routes import router

    install_counters(service)
    metrics = Metrics(service, settings_from(config if config is not None else getattr(service, "config", None)))
    metrics.install(app)
    # Starlette takes the first matching route: an older minimal /healthz must not shadow this one
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) != "/healthz"]
    app.include_router(router(service, metrics))
    return metrics


__all__ = ["SETTINGS", "HealthSettings", "install", "settings_from"]
