"""Alerts (issue 9): rules from the config file, evaluated on a schedule inside `telmon serve`,
pending / firing / resolved states with one notification per transition, reminders, silences,
e-mail and webhook notifications, and a daily digest.  See docs/alerts.md.

``rules`` parses ``[[rules]]``; ``observe`` reads each rule's subjects set-based; ``state`` is
the state machine; ``db`` the tables (states, silences, the notification outbox);
``evaluator`` runs passes; ``notify`` the channels; ``digest`` the daily report; ``ops`` the
library calls behind ``api`` and ``cli``.  Wiring::

    alerts.install(service, cfg)              # evaluator thread + channel workers; stop with the service
    app.include_router(alerts.api.router(service.alerts))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from telmon.alerts.rules import Rule, parse_rules
from telmon.alerts.settings import SETTINGS, AlertSettings

log = logging.getLogger("telmon.alerts")

__all__ = ["SETTINGS", "AlertSettings", "Alerts", "Rule", "install", "parse_rules"]


class Alerts:
    """What ``install`` started (``service.alerts``): the evaluator, its thread, the channels."""

    def __init__(self, evaluator: Any, thread: Any, dispatcher: Any, clock: Callable[[], float]) -> None:
        self.evaluator = evaluator
        self.thread = thread
        self.dispatcher = dispatcher
        self.clock = clock
        self._stopped = False

    @property
    def store(self) -> Any:
        return self.evaluator.store

    @property
    def rules(self) -> list[Rule]:
        return self.evaluator.rules

    def start(self) -> None:
        self.dispatcher.start()
        self.thread.start()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.thread.stop()
        self.dispatcher.stop()

    def evaluate(self, now: float | None = None) -> Any:
        return self.evaluator.evaluate(self.clock() if now is None else now)

    def components(self, *, now: float) -> list[Any]:
        """The evaluator and each channel, for telmon.health's snapshot."""
        from telmon.alerts import db
        from telmon.health.snapshot import Component, _alive, _state

        ev = self.evaluator
        last = ev.last
        error = ev.last_error or (next(iter(ev.errors.values())) if ev.errors else None)
        lag = None if last is None else max(0.0, now - last.at)
        # alert_interval = 0 turns evaluation off: not a fault, so not "stopped"
        state = _state(_alive(self.thread._thread), error, degraded=bool(ev.errors)) if self.thread.interval > 0 \
            else "disabled"
        out = [Component(
            "alerts", "evaluator", state, lag_s=lag, last_error=error,
            figures={"rules": len(ev.rules), "pending": last.pending if last else 0,
                     "firing": last.firing if last else 0, "pass_seconds": round(last.seconds, 4) if last else None,
                     "passes": ev.passes},
            detail={"rule_errors": dict(ev.errors)},
        )]
        figures = db.channel_figures(self.store, since=now - 86400)
        for name, worker in self.dispatcher.workers.items():
            f = figures.get(name, {})
            st = worker.stats
            degraded = bool(f.get("failed")) or (st.last_error_at is not None
                                                 and (st.last_sent_at is None or st.last_error_at > st.last_sent_at))
            out.append(Component(
                "notifier", name, _state(_alive(worker._thread), st.last_error, degraded=degraded),
                last_error=f.get("last_error") or st.last_error,
                figures={"queued": f.get("queued", 0), "sent_24h": f.get("sent", 0), "failed_24h": f.get("failed", 0),
                         "sent": st.sent, "attempts_failed": st.attempts_failed},
            ))
        return out


def install(service: Any, config: Any = None, *, rules: Sequence[Rule] | None = None, start: bool = True,
            clock: Callable[[], float] | None = None, senders: dict[str, Any] | None = None,
            send_clock: Callable[[], float] = time.time) -> Alerts:
    """Evaluate the config's rules inside ``service``: an evaluator thread every
    ``alert_interval`` seconds on ``service.now`` (or ``clock``), and one delivery thread per
    channel on ``send_clock`` (real time: retry backoffs are waited for).  Stops with
    ``service.stop()``.  ``rules``: instead of ``config.rules``.  Idempotent.  Raises
    ConfigError for bad alert settings or a store that cannot hold the alert tables."""
    existing = getattr(service, "alerts", None)
    if isinstance(existing, Alerts):
        return existing
    from telmon.alerts import db
    from telmon.alerts.evaluator import Evaluator, EvaluatorThread
    from telmon.alerts.notify import Dispatcher
    from telmon.health import settings_from

    config = config if config is not None else getattr(service, "config", None)
    settings = AlertSettings.from_config(config)
    if rules is None:
        rules = list(getattr(config, "rules", None) or [])
    _check_recipients(settings, rules)
    db.ensure_schema(service.store)
    dropped = db.forget_rules(service.store, [r.name for r in rules])
    if dropped:
        log.info("alerts: forgot %d alerts of rules no longer configured", dropped)
    dispatcher = Dispatcher(service.store, settings, clock=send_clock, senders=senders)
    evaluator = Evaluator(service.store, rules, settings, series=getattr(service, "series", None), service=service,
                          config=config, dispatcher=dispatcher, stuck_after=settings_from(config).health_stuck_after)
    tick = clock or getattr(service, "now", None) or time.time
    alerts = Alerts(evaluator, EvaluatorThread(evaluator, settings.alert_interval, tick), dispatcher, tick)
    _chain_stop(service, alerts.stop)
    service.alerts = alerts
    if start:
        alerts.start()
    log.info("alerts: %d rule(s), channels: %s", len(rules), ", ".join(dispatcher.workers) or "none")
    return alerts


def _check_recipients(settings: AlertSettings, rules: Sequence[Rule]) -> None:
    from telmon.errors import ConfigError

    if not settings.email_enabled or settings.alert_mail_to:
        return
    for r in rules:
        wants_mail = not r.notify or "email" in r.notify
        if wants_mail and not r.email_to:
            raise ConfigError(f"rule {r.name} mails its alerts but alert_mail_to is empty and it has no email_to",
                              key="alert_mail_to")


def _chain_stop(service: Any, fn: Callable[[], None]) -> None:
    """Stop after the service's own stop (as telmon.sinks and telmon.push do)."""
    previous = getattr(service, "stop", None)

    def stop() -> None:
        if previous is not None:
            previous()
        fn()

    service.stop = stop
