"""``telmon alerts list|test|silence|unsilence|notifications|digest`` and ``telmon status``:
thin click wrappers over telmon.alerts.ops, added by ``register(main)``.

The commands work on the store (alert states, silences and notifications live there) with the
rules of the config file, so they work whether or not `telmon serve` runs; a silence made here
applies to the server's next pass.  Helpers of telmon.cli are imported at registration, so the
two modules can import each other in either order (as telmon.sinks.cli does).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click


@contextmanager
def evaluator_for(cfg: Any) -> Iterator[Any]:
    """An Evaluator on the config's store and rules, for one command (store closed after)."""
    from telmon.alerts.evaluator import Evaluator
    from telmon.alerts.settings import AlertSettings
    from telmon.rollup.store import SeriesStore
    from telmon.store import open_store

    store = open_store(cfg.store_url)
    try:
        series = SeriesStore(store)  # type: ignore[arg-type]
        yield Evaluator(store, list(getattr(cfg, "rules", None) or []), AlertSettings.from_config(cfg),
                        series=series, config=cfg)
    finally:
        store.close()


def register(main: click.Group) -> None:
    """Add the ``alerts`` group and ``status`` to the ``telmon`` command."""
    from telmon.cli import _config, config_options, emit, friendly_errors
    from telmon.health.cli import register as register_status

    register_status(main)

    @main.group("alerts")
    def alerts_group() -> None:
        """Alert rules (the config's [[rules]]), their alerts, silences and notifications."""

    @alerts_group.command("list")
    @config_options
    @click.option("--rule", default=None, help="Only this rule's alerts.")
    @click.option("--limit", type=int, default=None, help="Most alerts listed (default 1000).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
    @friendly_errors
    def alerts_list(config_path: str | None, store: str | None, rule: str | None, limit: int | None,
                    as_json: bool) -> None:
        """Rules with pending / firing counts, the alerts, active silences, channels."""
        from telmon.alerts import ops

        with evaluator_for(_config(config_path, store)) as ev:
            data = ops.list_alerts(ev, now=time.time(), limit=limit, rule=rule)
        if as_json:
            emit(data, True, "alerts", [])
            return
        emit(data, False, "rules", ["name", "kind", "severity", "threshold", "for_s", "pending", "firing", "error"])
        click.echo("")
        emit(data, False, "alerts", ["rule", "subject", "state", "severity", "since", "value_text", "summary"])
        if data["silences"]:
            click.echo("")
            emit(data, False, "silences", ["id", "rule", "subject", "expires_at", "created_by", "comment"])
        if data["channels"]:
            click.echo("")
            emit(data, False, "channels", ["channel", "queued", "sent", "failed", "last_error", "last_error_at"])

    @alerts_group.command("test")
    @config_options
    @click.argument("name")
    @click.option("--notify", is_flag=True, help="Also send a test notification to the rule's channels now.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @friendly_errors
    def alerts_test(config_path: str | None, store: str | None, name: str, notify: bool, as_json: bool) -> None:
        """What rule NAME finds now (no alert changes state); exit 1 if a notification failed."""
        from telmon.alerts import ops

        with evaluator_for(_config(config_path, store)) as ev:
            data = ops.test_rule(ev, name, now=time.time(), notify=notify, deliver_here=True)
        if as_json:
            emit(data, True, "active", [])
        else:
            click.echo(f"rule {name} ({data['rule']['kind']} {data['rule']['threshold']}): "
                       f"{data['count']} subject(s) active now")
            emit(data, False, "active", ["subject", "value_text", "silenced", "summary"])
            for n in data["notifications"]:
                click.echo(f"notification to {n['channel']}: {n['status']}"
                           + (f" ({n['last_error']})" if n["last_error"] else ""))
        if any(n["status"] != "sent" for n in data["notifications"]):
            sys.exit(1)

    @alerts_group.command("silence")
    @config_options
    @click.argument("rule")
    @click.option("--subject", default="*", show_default=True, help="Subject (station, client, ...) name or glob.")
    @click.option("--for", "duration", default=None, help="How long, e.g. 30m, 2h, 7d.")
    @click.option("--until", default=None, help="Until when (ISO 8601 or epoch seconds).")
    @click.option("--comment", default="", help="Why (shown with the silence).")
    @click.option("--by", "created_by", default=None, help="Who (default: $USER).")
    @click.option("--json", "as_json", is_flag=True)
    @friendly_errors
    def alerts_silence(config_path: str | None, store: str | None, rule: str, subject: str, duration: str | None,
                       until: str | None, comment: str, created_by: str | None, as_json: bool) -> None:
        """Silence RULE (a name or glob) for --subject until --until or for --for."""
        import os

        from telmon.alerts import ops

        with evaluator_for(_config(config_path, store)) as ev:
            data = ops.silence(ev, rule, subject, now=time.time(), duration=duration, until=until, comment=comment,
                               created_by=created_by or os.environ.get("USER"))
        if as_json:
            emit(data, True, "silence", [])
            return
        s = data["silence"]
        click.echo(f"silence {s['id']}: rule {s['rule']} subject {s['subject']} until {s['expires_at']}")
        if not data["matches_rules"]:
            click.echo(f"note: no configured rule matches {rule!r} (yet)", err=True)

    @alerts_group.command("unsilence")
    @config_options
    @click.argument("silence_id")
    @friendly_errors
    def alerts_unsilence(config_path: str | None, store: str | None, silence_id: str) -> None:
        """End silence SILENCE_ID now."""
        from telmon.alerts import ops

        with evaluator_for(_config(config_path, store)) as ev:
            data = ops.unsilence(ev, silence_id, now=time.time())
        click.echo(f"silence {data['silence']['id']} expired at {data['silence']['expired_at']}")

    @alerts_group.command("notifications")
    @config_options
    @click.option("--status", default=None, help="queued, sent or failed.")
    @click.option("--limit", type=int, default=None)
    @click.option("--json", "as_json", is_flag=True)
    @friendly_errors
    def alerts_notifications(config_path: str | None, store: str | None, status: str | None, limit: int | None,
                             as_json: bool) -> None:
        """Notifications, newest first, with attempts and the last error."""
        from telmon.alerts import ops

        with evaluator_for(_config(config_path, store)) as ev:
            data = ops.notifications(ev, status=status, limit=limit)
        emit(data, as_json, "notifications",
             ["id", "created_at", "channel", "kind", "status", "attempts", "title", "last_error"])

    @alerts_group.command("digest")
    @config_options
    @friendly_errors
    def alerts_digest(config_path: str | None, store: str | None) -> None:
        """Print the daily digest as it would be mailed now."""
        from telmon.alerts.digest import compose

        with evaluator_for(_config(config_path, store)) as ev:
            subject, text = compose(ev, time.time())
        click.echo(f"Subject: {subject}\n\n{text}", nl=False)
