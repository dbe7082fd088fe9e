"""``telmon worker`` and ``telmon outbox status``: thin click wrappers, added by ``register(main)``.

telmon.cli calls ``register(main)`` once its own commands exist; the shared helpers
(``config_options``, ``friendly_errors``, ``emit``) are imported then, not at import time,
so the two modules can import each other in either order.
"""

from __future__ import annotations

import shlex
import signal
import sys
import time
from typing import Any

import click


def register(main: click.Group) -> None:
    """Add ``worker`` and the ``outbox`` group to the ``telmon`` command."""
    from telmon.cli import (
        _config,
        _setup_logging,
        config_options,
        emit,
        friendly_errors,
    )

    @main.command()
    @config_options
    @click.option("--queue", default=None, help="Queue to consume (default: the amqp_queue setting).")
    @click.option("--exec", "command", required=True,
                  help="Command run per message, e.g. 'process-job {path}': the message JSON on stdin; "
                       "{path} {id} {sha256} {feed} {station} are replaced; TELMON_MESSAGE_ID etc. in the environment.")
    @click.option("--amqp-url", default=None, help="Broker URL (default: the amqp_url setting).")
    @click.option("--prefetch", type=int, default=1, show_default=True,
                  help="Messages taken at once; as many commands run in parallel.")
    @click.option("--retry-delay", type=float, default=1.0, show_default=True,
                  help="Seconds before a failed message goes back on the queue.")
    @click.option("--max-failures", type=int, default=0, show_default=True,
                  help="Reject a message (dead-letter) after this many failures here; 0: retry forever.")
    @click.option("--timeout", type=float, default=None, help="Kill a command after this many seconds (a failure).")
    @click.option("--max-messages", type=int, default=0, help="Exit after this many commands finished (0: run on).")
    @friendly_errors
    def worker(config_path: str | None, store: str | None, queue: str | None, command: str, amqp_url: str | None,
               prefetch: int, retry_delay: float, max_failures: int, timeout: float | None,
               max_messages: int) -> None:
        """Consume the work queue: run a command per message, ack only after it succeeds."""
        from telmon.sinks import SinkSettings
        from telmon.sinks.worker import JobWorker, WorkerOptions

        cfg = _config(config_path, store)
        _setup_logging(cfg.log_level)
        s = SinkSettings.from_config(cfg)
        url = amqp_url or s.amqp_url or "amqp://guest:guest@127.0.0.1:5672/%2F"
        argv = shlex.split(command)
        if not argv:
            raise click.UsageError("--exec needs a command")
        if prefetch < 1:
            raise click.UsageError("--prefetch must be >= 1")
        job_worker = JobWorker(WorkerOptions(url=url, queue=queue or s.amqp_queue, command=argv, prefetch=prefetch,
                                             retry_delay=retry_delay, max_failures=max_failures, timeout=timeout,
                                             max_messages=max_messages))
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: job_worker.stop())
        stats = job_worker.run()
        click.echo(f"worker: {stats.succeeded} succeeded, {stats.failed} failed, {stats.gave_up} given up", err=True)

    @main.group("outbox")
    def outbox_group() -> None:
        """The outbox of arrivals waiting for RabbitMQ and Redis."""

    @outbox_group.command("status")
    @config_options
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @friendly_errors
    def outbox_status(config_path: str | None, store: str | None, as_json: bool) -> None:
        """Per sink: rows waiting, the oldest one's age, rows delivered, the last error."""
        data = status(_config(config_path, store).store_url, now=time.time())
        emit(data, as_json, "sinks", ["sink", "pending", "oldest_pending_age_s", "delivered", "state", "last_error"])
        if any(r["state"] == "failing" for r in data["sinks"]):
            sys.exit(2)


def status(store_url: str, *, now: float) -> dict[str, Any]:
    """The outbox status of the store at ``store_url`` (the library call behind the command)."""
    from telmon.errors import ConfigError
    from telmon.sinks.outbox import Outbox
    from telmon.store import open_store
    from telmon.store.sqlite import SQLiteStore

    store = open_store(store_url)
    try:
        if not isinstance(store, SQLiteStore):
            raise ConfigError(f"{store.url} holds no outbox (the sinks need the SQLite store)", key="store")
        rows = Outbox(store).status(now=now)
    finally:
        store.close()
    return {"sinks": rows}
