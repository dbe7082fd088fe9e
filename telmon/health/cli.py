"""`telmon status`: each watcher, tailer, agent, sink and notifier with its lag and last error.

The live figures belong to the running server, so the command asks its ``/api/v1/health``;
when no server answers it says so and prints what the store alone knows (outbox, alert
notifications).  Exit status: 0 all ready, 2 something is down, degraded or unreachable.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click
import httpx

from telmon.timeutil import iso


def fetch(url: str, *, timeout: float = 5.0) -> dict[str, Any]:
    """The health report of the telmon serving ``url``.  Raises httpx.HTTPError."""
    r = httpx.get(url.rstrip("/") + "/api/v1/health", timeout=timeout)
    r.raise_for_status()
    return r.json()


def from_store(store_url: str, *, now: float) -> dict[str, Any]:
    """What the store alone says: outbox rows waiting per sink, notification channels."""
    from telmon.store import open_store

    store = open_store(store_url)
    comps: list[dict[str, Any]] = []
    try:
        with store._read() as conn:  # type: ignore[attr-defined]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "outbox" in tables:
            from telmon.sinks.outbox import Outbox

            for r in Outbox(store).status(now=now):  # type: ignore[arg-type]
                comps.append({"kind": "sink", "name": r["sink"], "id": f"sink:{r['sink']}", "state": r["state"],
                              "lag_s": r["oldest_pending_age_s"], "last_error": r["last_error"],
                              "figures": {"pending": r["pending"], "delivered": r["delivered"]}})
        if "alert_notifications" in tables:
            from telmon.alerts import db

            for ch, f in sorted(db.channel_figures(store, since=now - 86400).items()):
                comps.append({"kind": "notifier", "name": ch, "id": f"notifier:{ch}",
                              "state": "degraded" if f.get("failed") else "ok", "lag_s": None,
                              "last_error": f.get("last_error"),
                              "figures": {"queued": f.get("queued"), "sent_24h": f.get("sent"),
                                          "failed_24h": f.get("failed")}})
    finally:
        store.close()
    return {"now": iso(now), "ready": None, "checks": [], "components": comps}


def _lag(v: Any) -> str:
    if v is None:
        return "-"
    from telmon.alerts.observe import span_text

    return span_text(float(v))


def render(report: dict[str, Any], table: Any) -> str:
    rows = [{"kind": c["kind"], "name": c["name"], "state": c["state"], "lag": _lag(c.get("lag_s")),
             "figures": " ".join(f"{k}={'-' if v is None else v}" for k, v in (c.get("figures") or {}).items()),
             "last_error": (c.get("last_error") or "-")[:100]}
            for c in report["components"]]
    out = [table(rows, ["kind", "name", "state", "lag", "last_error", "figures"]) if rows else "(no components)"]
    failing = [c for c in report.get("checks", []) if not c["ok"]]
    if failing:
        out.append("")
        out += [f"not ready: {c['check']}: {c['reason']}" for c in failing]
    return "\n".join(out)


def register(main: click.Group) -> None:
    """Add ``telmon status`` to the ``telmon`` command."""
    from telmon.cli import _config, config_options, friendly_errors, table

    @main.command("status")
    @config_options
    @click.option("--url", default=None, help="The running telmon (default: http://<host>:<port> of the config).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @friendly_errors
    def status(config_path: str | None, store: str | None, url: str | None, as_json: bool) -> None:
        """Each watcher, tailer, agent, sink and notifier: state, lag, last error (exit 2 unless all ready)."""
        import orjson

        cfg = _config(config_path, store)
        base = url or f"http://{cfg.host}:{cfg.port}"
        try:
            report = fetch(base)
            report["source"] = base
        except httpx.HTTPError as exc:
            report = from_store(cfg.store_url, now=time.time())
            report["source"] = cfg.store_url
            report["unreachable"] = f"{base}: {exc}"
        if as_json:
            click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        else:
            if report.get("unreachable"):
                click.echo(f"telmon serve is not answering at {report['unreachable']}; from the store only:")
            else:
                word = "ready" if report.get("ready") else "NOT READY"
                click.echo(f"telmon {report.get('version')} at {base}, up {_lag(report.get('uptime_s'))}, {word}")
            click.echo(render(report, table))
        bad = report.get("unreachable") or report.get("ready") is False or any(
            c["state"] in ("down", "degraded") for c in report["components"])
        if bad:
            sys.exit(2)
