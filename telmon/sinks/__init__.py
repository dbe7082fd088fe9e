"""Sinks: arrivals announced on a RabbitMQ queue and counted into Redis, through an outbox.

``install(service)`` adds the outbox record hook to the service's store (so an arrival and
its outbox rows commit in one transaction) and starts one relay thread per configured sink;
they stop when the service stops. Which arrivals go where is configuration: by format
(``jobarchive`` by default) or by feed. See docs/jobs.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from telmon.errors import ConfigError

log = logging.getLogger("telmon.sinks")

# (name, default, help, type): the lines to add to telmon.config.SETTINGS as Setting(*row).
SETTINGS: tuple[tuple[str, Any, str, type], ...] = (
    ("amqp_url", "", "RabbitMQ URL arrivals are published to, e.g. amqp://guest:guest@127.0.0.1:5672/%2F "
     "(empty: no AMQP sink).", str),
    ("amqp_queue", "t4tc_monitor", "Durable queue declared for published arrivals (and read by `telmon worker`).", str),
    ("amqp_exchange", "", "Exchange to publish to (empty: the default exchange, straight to amqp_queue).", str),
    ("amqp_exchange_type", "direct", "Type of amqp_exchange when telmon declares it.", str),
    ("amqp_routing_key", "", "Routing key of published messages (empty: amqp_queue).", str),
    ("amqp_formats", ["jobarchive"], "Formats whose arrivals are published to AMQP.", list),
    ("amqp_feeds", [], "Feeds whose every arrival is published to AMQP ('*': all feeds).", list),
    ("amqp_window", 256, "Most messages published and not yet confirmed by the broker.", int),
    ("redis_url", "", "Redis URL statistics are counted into, e.g. redis://127.0.0.1:6379/0 (empty: no Redis sink).", str),
    ("redis_prefix", "T4TC_MONITOR/TOTAL/", "Key prefix of the Test4Theory statistics (job archives).", str),
    ("redis_arrivals_prefix", "telmon/arrivals/", "Key prefix of the counts of other arrivals routed to Redis.", str),
    ("redis_formats", ["jobarchive"], "Formats whose arrivals are counted in Redis.", list),
    ("redis_feeds", [], "Feeds whose every arrival is counted in Redis ('*': all feeds).", list),
    ("redis_rate_window", 600.0, "Seconds over which event_rate (events per second) is taken.", float),
    ("redis_rate_interval", 5.0, "Seconds between event_rate refreshes while no job arrives (0: only on arrival).", float),
    ("redis_new_user_ttl", 86400.0, "Seconds a first-seen user's NEW_USERS/<user> key lives.", float),
    ("redis_processed_keep", 2592000.0, "Seconds an archive id is remembered in Redis so a replay is not counted twice.", float),
    ("outbox_batch", 500, "Most outbox rows a Redis relay applies in one script call.", int),
    ("sink_retry_max", 30.0, "Longest pause, in seconds, between reconnection attempts to a sink.", float),
)


@dataclass(slots=True)
class SinkSettings:
    amqp_url: str = ""
    amqp_queue: str = "t4tc_monitor"
    amqp_exchange: str = ""
    amqp_exchange_type: str = "direct"
    amqp_routing_key: str = ""
    amqp_formats: list[str] = field(default_factory=lambda: ["jobarchive"])
    amqp_feeds: list[str] = field(default_factory=list)
    amqp_window: int = 256
    redis_url: str = ""
    redis_prefix: str = "T4TC_MONITOR/TOTAL/"
    redis_arrivals_prefix: str = "telmon/arrivals/"
    redis_formats: list[str] = field(default_factory=lambda: ["jobarchive"])
    redis_feeds: list[str] = field(default_factory=list)
    redis_rate_window: float = 600.0
    redis_rate_interval: float = 5.0
    redis_new_user_ttl: float = 86400.0
    redis_processed_keep: float = 2592000.0
    outbox_batch: int = 500
    sink_retry_max: float = 30.0

    @classmethod
    def from_config(cls, config: Any = None, **overrides: Any) -> SinkSettings:
        """From a telmon Config (its ``values``), a mapping, or nothing; a setting telmon's
        config does not declare (yet) keeps its default here."""
        values: Mapping[str, Any] = {}
        if isinstance(config, Mapping):
            values = config
        elif config is not None:
            values = config.values  # telmon.config.Config
        kw: dict[str, Any] = {}
        types = {name: typ for name, _d, _h, typ in SETTINGS}
        for f in fields(cls):
            if f.name in overrides:
                kw[f.name] = overrides[f.name]
            elif f.name in values:
                kw[f.name] = _coerce(f.name, values[f.name], types[f.name])
        s = cls(**kw)
        if s.redis_rate_window <= 0:
            raise ConfigError("must be > 0", key="redis_rate_window")
        if s.amqp_window < 1:
            raise ConfigError("must be >= 1", key="amqp_window")
        return s


def _coerce(name: str, value: Any, typ: type) -> Any:
    if typ is list and isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    try:
        return typ(value)
    except (TypeError, ValueError):
        raise ConfigError(f"expected {typ.__name__}, got {value!r}", key=name) from None


@dataclass
class Sinks:
    """What ``install`` started: the outbox and its relays."""

    outbox: Any
    relays: dict[str, Any] = field(default_factory=dict)
    now: Callable[[], float] = time.time
    _started: bool = False
    _stopped: bool = False

    def start(self) -> None:
        """Start the relay threads (once)."""
        if self._started or self._stopped:
            return
        self._started = True
        for relay in self.relays.values():
            relay.start()

    def wake(self) -> None:
        for relay in self.relays.values():
            relay.wake()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for relay in self.relays.values():
            relay.stop()
        for relay in self.relays.values():
            redis_stats = getattr(relay, "redis", None)
            if redis_stats is not None:
                redis_stats.close()

    def status(self) -> dict[str, Any]:
        rows = {r["sink"]: r for r in self.outbox.status(now=self.now())}
        for name, relay in self.relays.items():
            rows.setdefault(name, {"sink": name, "pending": 0})["relay"] = dict(vars(relay.stats))
        return {"sinks": list(rows.values())}


def install(service: Any, settings: Any = None, *, start: bool = True,
            now: Callable[[], float] | None = None) -> Sinks | None:
    """Add the outbox hook to ``service.store`` and, with ``start``, start the configured
    relays (else ``sinks.start()`` does); ``service.stop()`` stops them. Returns None when no
    sink is configured (no URL set). Raises ConfigError when the store cannot hold an outbox
    (it must be the SQLite store) or already has one.

    The hook must be in place wherever arrivals are recorded (``telmon ingest`` too), or those
    arrivals are never announced; the relays only need to run in a long-lived process."""
    s = settings if isinstance(settings, SinkSettings) else SinkSettings.from_config(
        settings if settings is not None else getattr(service, "config", None))
    if not s.amqp_url and not s.redis_url:
        return None
    from telmon.sinks.outbox import Outbox, Route

    store = service.store
    if not hasattr(store, "record_hooks"):
        raise ConfigError(f"sinks need a store with an outbox (SQLite); {store.url} has none", key="store")
    if any(getattr(h, "telmon_outbox", False) for h in store.record_hooks):
        raise ConfigError("sinks are already installed on this store (each arrival would be queued twice)")
    clock: Callable[[], float] = now or getattr(service, "now", None) or time.time
    outbox = Outbox(store)
    routes = []
    relays: dict[str, Any] = {}
    if s.amqp_url:
        from telmon.sinks.amqp import AmqpRelay, AmqpTarget

        target = AmqpTarget(url=s.amqp_url, queue=s.amqp_queue, exchange=s.amqp_exchange,
                            exchange_type=s.amqp_exchange_type, routing_key=s.amqp_routing_key)
        routes.append(Route("amqp", frozenset(s.amqp_formats), frozenset(s.amqp_feeds)))
        relays["amqp"] = AmqpRelay(outbox, target, window=s.amqp_window, retry_max=s.sink_retry_max, now=clock)
    if s.redis_url:
        from telmon.sinks.redis import RedisLayout, RedisRelay, RedisStats

        layout = RedisLayout(t4tc_prefix=s.redis_prefix, arrivals_prefix=s.redis_arrivals_prefix,
                             rate_window=s.redis_rate_window, new_user_ttl=s.redis_new_user_ttl,
                             processed_keep=s.redis_processed_keep)
        routes.append(Route("redis", frozenset(s.redis_formats), frozenset(s.redis_feeds)))
        # event_rate only decays on its own if job archives can reach this sink at all
        t4tc = "jobarchive" in s.redis_formats or bool(s.redis_feeds)
        relays["redis"] = RedisRelay(outbox, RedisStats.from_url(s.redis_url, layout), batch=s.outbox_batch,
                                     rate_interval=s.redis_rate_interval if t4tc else 0.0,
                                     retry_max=s.sink_retry_max, now=clock)
    store.record_hooks.append(outbox.hook(routes))
    sinks = Sinks(outbox, relays, now=clock)
    outbox.add_listener(sinks.wake)
    _chain_after_commit(service, outbox.notify)
    _chain_stop(service, sinks.stop)
    if start:
        sinks.start()
    service.sinks = sinks
    log.info("sinks: %s", ", ".join(f"{r.sink} (formats {sorted(r.formats)}, feeds {sorted(r.feeds)})" for r in routes))
    return sinks


def _chain_after_commit(service: Any, fn: Callable[[], None]) -> None:
    """Wake the relays right after the ingest worker commits (the hook itself runs before the
    commit, when the rows are not visible yet); the relays also poll as a safety net."""
    worker = getattr(service, "worker", None)
    if worker is None:
        return
    previous = worker.on_commit

    def on_commit(results: Any) -> None:
        fn()
        if previous is not None:
            previous(results)

    worker.on_commit = on_commit


def _chain_stop(service: Any, fn: Callable[[], None]) -> None:
    """Stop the relays after the service's own stop (its last commits are then in the outbox)."""
    previous = service.stop

    def stop() -> None:
        previous()
        fn()

    service.stop = stop
