"""The ``telmon`` command: thin click wrappers over library calls.

Each command opens what it needs, calls one library function and prints a readable table
(or JSON with --json). A TelmonError becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import orjson

from telmon import __version__, query
from telmon.cli_common import F, config_options, friendly_errors
from telmon.config import SETTINGS, Config, WatchSpec, load_config, settings_markdown

def _config(config_path: str | None, store: str | None) -> Config:
    cfg = load_config(config_path)
    if store:
        cfg.set("store", store)
    return cfg


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, str(level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # pika logs an ERROR per reconnect attempt while a broker is down; telmon says it once itself
    logging.getLogger("pika").setLevel(logging.WARNING)


def emit(data: dict[str, Any], as_json: bool, rows_key: str, columns: Sequence[str]) -> None:
    if as_json:
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    rows = data.get(rows_key, [])
    if not rows:
        click.echo(f"(no {rows_key.replace('_', ' ')})")
    else:
        click.echo(table(rows, columns))
    if data.get("next"):
        click.echo(f"more: --cursor {data['next']}")


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:g}"
        if isinstance(v, (list, tuple)):
            return ",".join(map(str, v))
        if isinstance(v, dict):
            return " ".join(f"{k}={cell(x)}" for k, x in v.items())
        return str(v)

    grid = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(g[i]) for g in grid)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(g, widths)).rstrip() for g in grid]
    return "\n".join(lines)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="telmon")
def main() -> None:
    """telmon: what arrived, what is late or missing, and how the flows behave."""


# --- running -----------------------------------------------------------------------------
@main.command()
@config_options
@click.option("--demo", is_flag=True, help="Drop the bundled sample files into a watched demo folder.")
@click.option("--host", default=None, help="Listen address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default 8321).")
@click.option("--watch", "watch_dirs", multiple=True, type=click.Path(file_okay=False), help="Also watch this folder.")
@click.option("--feed", default="files", show_default=True, help="Feed (source) name for --watch folders.")
@friendly_errors
def serve(config_path: str | None, store: str | None, demo: bool, host: str | None, port: int | None,
          watch_dirs: tuple[str, ...], feed: str) -> None:
    """Run the HTTP API and pages, the watchers and the ingest worker."""
    import uvicorn

    from telmon.service import Service
    from telmon.wiring import build_app, install_capabilities

    cfg = _config(config_path, store)
    _setup_logging(cfg.log_level)
    for d in watch_dirs:
        cfg.watch.append(WatchSpec(d, feed))
    if demo:
        from telmon.demo import prepare_demo

        prepare_demo(cfg)
    service = Service(cfg)
    if demo:
        from telmon.demo import DemoFeed

        service.demo = DemoFeed(Path(cfg.data_dir) / "demo-inbox", interval=float(cfg.demo_interval))
    install_capabilities(service, cfg)
    app = build_app(service)
    h, p = host or cfg.host, port or cfg.port
    service.start()
    click.echo(f"telmon {__version__} on http://{h}:{p}/  (API docs: http://{h}:{p}/docs; store {service.store.url})",
               err=True)
    try:
        uvicorn.run(app, host=h, port=p, log_level="warning", access_log=False)
    finally:
        service.close()


@main.command()
@config_options
@click.argument("dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--feed", default="files", show_default=True, help="Feed (source) name recorded with each arrival.")
@click.option("--poll", type=float, default=None, help="Poll every N seconds instead of inotify (NFS).")
@click.option("--once", is_flag=True, help="Record what is there now (catch-up scan), then exit.")
@friendly_errors
def watch(config_path: str | None, store: str | None, dirs: tuple[str, ...], feed: str, poll: float | None,
          once: bool) -> None:
    """Watch folders and record every complete file that lands in them."""
    from telmon.service import Service

    cfg = _config(config_path, store)
    _setup_logging(cfg.log_level)
    service = Service(cfg)
    if once:
        from telmon.ingest.pipeline import ingest_tree

        try:
            results = ingest_tree(service.ingestor, dirs, feed, ignore=cfg.ignore, batch_max=int(cfg.batch_max))
        finally:
            service.store.close()
        click.echo(f"recorded {sum(r.status != 'duplicate' for r in results)} file(s), "
                   f"{sum(r.status == 'rejected' for r in results)} rejected", err=True)
        return
    for d in dirs:
        service.add_watch(WatchSpec(d, feed, poll))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    service.start()
    try:
        click.echo(f"watching {', '.join(dirs)} (store {service.store.url}); Ctrl-C stops", err=True)
        stop.wait()
    finally:
        service.close()


@main.command()
@config_options
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--feed", default="files", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def ingest(config_path: str | None, store: str | None, files: tuple[str, ...], feed: str, as_json: bool) -> None:
    """Record the given files now (one transaction) and say what each gave."""
    from telmon.service import Service

    service = Service(_config(config_path, store))
    try:
        results = service.ingestor.ingest([(Path(f).resolve(), feed) for f in files])
    finally:
        service.store.close()
    rows = [{"path": r.path, "status": r.status, "format": r.format, "version": r.version, "arrivals": r.arrivals,
             "entries": r.entries, "reasons": "; ".join(r.reasons)} for r in results]
    emit({"files": rows}, as_json, "files", ["path", "status", "format", "version", "arrivals", "entries", "reasons"])
    if any(r.status == "rejected" for r in results):
        sys.exit(1)


# --- the questions -----------------------------------------------------------------------
@main.group("query")
def query_group() -> None:
    """Ask the five station questions (readable table, or --json)."""


def _store(config_path: str | None, store: str | None) -> Any:
    from telmon.store import open_store

    return open_store(_config(config_path, store).store_url)


_span_opts = [
    click.option("--start", default=None, help="ISO 8601 (naive = UTC) or epoch seconds."),
    click.option("--end", default=None, help="ISO 8601 or epoch seconds; default now."),
    click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table."),
]


def span_options(fn: F) -> F:
    for opt in reversed(_span_opts):
        fn = opt(fn)
    return config_options(fn)


@query_group.command("updated")
@span_options
@friendly_errors
def q_updated(config_path: str | None, store: str | None, start: str | None, end: str | None, as_json: bool) -> None:
    """1. Stations with file updates between START and END (default: the last hour)."""
    with _store(config_path, store) as st:
        data = query.stations_updated(st, start, end)
    emit(data, as_json, "stations", ["station", "arrivals", "first_arrival", "last_arrival", "feeds"])


@query_group.command("gaps")
@span_options
@click.option("--station", "stations", multiple=True, help="Limit to these stations (repeat or comma-separate).")
@friendly_errors
def q_gaps(config_path: str | None, store: str | None, start: str | None, end: str | None, as_json: bool,
           stations: tuple[str, ...]) -> None:
    """2. Stations with gaps in their time entries (default: the last day)."""
    with _store(config_path, store) as st:
        data = query.station_gaps(st, start, end, list(stations) or None)
    if as_json:
        emit(data, True, "stations", [])
        return
    rows = [{"station": s["station"], "interval_s": s["interval_s"], "start": g["start"], "end": g["end"],
             "missing": g["missing"], "open": g["open"]} for s in data["stations"] for g in s["gaps"]]
    emit({"gaps": rows}, False, "gaps", ["station", "interval_s", "start", "end", "missing", "open"])


@query_group.command("silent")
@span_options
@friendly_errors
def q_silent(config_path: str | None, store: str | None, start: str | None, end: str | None, as_json: bool) -> None:
    """3. Stations not updated between START and END (default: the last day)."""
    with _store(config_path, store) as st:
        data = query.stations_silent(st, start, end)
    emit(data, as_json, "stations", ["station", "last_arrival", "last_entry", "registered", "never_seen"])


@query_group.command("arrivals")
@span_options
@click.argument("stations", nargs=-1, required=True)
@click.option("--limit", type=int, default=None)
@click.option("--cursor", default=None, help="Continue from the 'more:' cursor of the last page.")
@friendly_errors
def q_arrivals(config_path: str | None, store: str | None, start: str | None, end: str | None, as_json: bool,
               stations: tuple[str, ...], limit: int | None, cursor: str | None) -> None:
    """4. Update (arrival) times for STATIONS."""
    with _store(config_path, store) as st:
        data = query.arrivals(st, stations, start, end, limit=limit, cursor=cursor)
    emit(data, as_json, "arrivals", ["station", "received_at", "feed", "format", "message_time", "entries", "path"])


@query_group.command("entries")
@span_options
@click.argument("stations", nargs=-1, required=True)
@click.option("--limit", type=int, default=None)
@click.option("--cursor", default=None, help="Continue from the 'more:' cursor of the last page.")
@friendly_errors
def q_entries(config_path: str | None, store: str | None, start: str | None, end: str | None, as_json: bool,
              stations: tuple[str, ...], limit: int | None, cursor: str | None) -> None:
    """5. Time entries (and values) for STATIONS, paginated."""
    with _store(config_path, store) as st:
        data = query.entries(st, stations, start, end, limit=limit, cursor=cursor)
    emit(data, as_json, "entries", ["station", "observed_at", "values", "first_seen_at"])


@main.command()
@config_options
@click.option("--search", default=None, help="Substring of the id or name.")
@click.option("--limit", type=int, default=None)
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def stations(config_path: str | None, store: str | None, search: str | None, limit: int | None, as_json: bool) -> None:
    """List stations with their last arrival and entry."""
    with _store(config_path, store) as st:
        data = query.station_list(st, search=search, limit=limit)
    emit(data, as_json, "stations",
         ["station", "name", "kind", "registered", "last_arrival_at", "last_entry_at", "arrival_count", "entry_count"])


@main.command()
@config_options
@click.option("--since", default=None, help="Only rejections received since this time.")
@click.option("--limit", type=int, default=None)
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def rejected(config_path: str | None, store: str | None, since: str | None, limit: int | None, as_json: bool) -> None:
    """Rejected files and parts of files, newest first, with the reason and where."""
    with _store(config_path, store) as st:
        data = query.rejected(st, since=since, limit=limit)
    emit(data, as_json, "rejected", ["received_at", "path", "format", "line", "offset", "reason", "quarantined_to"])


@main.command()
@click.option("--markdown", is_flag=True, help="Print the table that docs/settings.md holds.")
def settings(markdown: bool) -> None:
    """Every setting with its default and meaning (config key, or TELMON_<NAME> in the environment)."""
    if markdown:
        click.echo(settings_markdown(), nl=False)
        return
    for s in SETTINGS:
        click.echo(f"{s.name:20} {s.default!r:32} {s.help}")


def _register_capabilities() -> None:
    """Commands that live beside each capability's code."""
    from telmon.alerts.cli import register as register_alerts
    from telmon.graphs.cli import register as register_graphs
    from telmon.push.cli import register as register_push
    from telmon.rollup.cli import register as register_rollup
    from telmon.schedule.cli import register as register_schedule
    from telmon.sinks.cli import register as register_sinks
    from telmon.tail.cli import register as register_tail

    register_rollup(main)
    register_schedule(main)
    register_sinks(main)
    register_push(main)
    register_tail(main)
    register_alerts(main)
    register_graphs(main)


_register_capabilities()
