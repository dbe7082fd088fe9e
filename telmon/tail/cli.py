"""``telmon tail``, ``telmon transfers``, ``telmon rewind``, ``telmon backup``, ``telmon restore``.

Thin click wrappers over telmon.tail, added by ``register(main)`` (telmon.cli calls it once
its own commands exist; the shared helpers are imported then, so the modules can import each
other in either order).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click


def register(main: click.Group) -> None:
    """Add the transfer-log commands to ``main``."""
    from telmon.cli import _config, _setup_logging, config_options, emit, friendly_errors

    def _open(config_path: str | None, store: str | None) -> tuple[Any, Any, Any]:
        from telmon.rollup.store import SeriesStore
        from telmon.store import open_store
        from telmon.tail.schema import ensure_schema

        cfg = _config(config_path, store)
        st = open_store(cfg.store_url)
        try:
            ensure_schema(st)
            ss = SeriesStore(st)
        except BaseException:
            st.close()
            raise
        return cfg, st, ss

    def _now(value: str | None) -> float:
        from telmon.timeutil import parse_time

        return parse_time(value, field="now") if value else time.time()

    @main.command()
    @config_options
    @click.argument("dirs", nargs=-1, type=click.Path(file_okay=False))
    @click.option("--machine", default=None, help="Machine name for the statistics (default: the host name).")
    @click.option("--zone", default=None, help="Zone of the log timestamps: UTC, -04:00, America/Montreal ...")
    @click.option("--pattern", "patterns", multiple=True, help="File-name pattern (repeat; default tx_*.log* rx_*.log*).")
    @click.option("--max-latency", type=float, default=None, help="Seconds above which a file is over the maximum.")
    @click.option("--interval", type=float, default=None, help="Seconds between looks once caught up.")
    @click.option("--chunk-mb", type=float, default=None, help="Megabytes read per commit while catching up.")
    @click.option("--push", "push_url", default=None, help="Send the statistics to this central telmon.")
    @click.option("--token", default=None, help="Token for --push.")
    @click.option("--keep-local", is_flag=True, default=None, help="With --push, also keep the statistics here.")
    @click.option("--once", is_flag=True, help="Catch up (and push) what is there now, then exit.")
    @click.option("--now", "now_at", default=None, help="Take this as the current time (replay old logs).")
    @click.option("--progress/--no-progress", default=None, help="Progress bar while catching up (default: on a terminal).")
    @click.option("--status", "show_status", is_flag=True, help="Show the followed files, notes and outbox; exit.")
    @click.option("--json", "as_json", is_flag=True, help="With --status or --once: JSON.")
    @friendly_errors
    def tail(config_path: str | None, store: str | None, dirs: tuple[str, ...], machine: str | None,
             zone: str | None, patterns: tuple[str, ...], max_latency: float | None, interval: float | None,
             chunk_mb: float | None, push_url: str | None, token: str | None, keep_local: bool | None, once: bool,
             now_at: str | None, progress: bool | None, show_status: bool, as_json: bool) -> None:
        """Follow MetPX Sundew logs in DIRS (tx_*.log*, rx_*.log*) and keep their per-minute
        statistics, exactly once, resuming where the last run stopped."""
        from telmon.tail.admin import status as tail_status
        from telmon.tail.push import Pusher
        from telmon.tail.settings import TailSettings
        from telmon.tail.tailer import Tailer

        cfg, st, ss = _open(config_path, store)
        try:
            if show_status:
                data = tail_status(st, machine=machine)
                if as_json:
                    emit(data, True, "", [])
                    return
                emit(data, False, "files", ["machine", "direction", "client", "state", "lines", "offset", "size",
                                            "transfers", "errors", "bad", "path"])
                for n in data["notes"]:
                    click.echo(f"{n['at']}  {n['event']}: {n['detail']}")
                click.echo(f"outbox: {data['outbox']['messages']} message(s) waiting")
                return
            _setup_logging(cfg.log_level)
            base = TailSettings.from_config(cfg)
            settings = base.with_(
                dirs=list(dirs) or None, machine=machine, zone=zone, patterns=list(patterns) or None,
                max_latency=max_latency, interval=interval,
                chunk_bytes=int(chunk_mb * (1 << 20)) if chunk_mb else None, push_url=push_url, push_token=token,
                keep_local=keep_local)
            if not settings.dirs:
                raise click.UsageError("give the log folders (or set tail_dirs)")
            fixed = _now(now_at) if now_at else None
            clock = (lambda: fixed) if fixed is not None else time.time
            show = sys.stderr.isatty() if progress is None else progress
            bar: Any = None

            def on_progress(done: int, total: int) -> None:
                nonlocal bar
                if not show or total < (8 << 20):
                    return  # a bar for a real backlog only
                if bar is None:
                    bar = click.progressbar(length=total, label="catching up", file=sys.stderr, show_eta=True)
                    bar.__enter__()
                bar.update(done - bar.pos)

            tailer = Tailer(st, ss, settings, now=clock, on_progress=on_progress)
            pusher = Pusher(st, settings.push_url, settings.push_token) if settings.push_url else None
            if once:
                result = tailer.poll()
                if bar is not None:
                    bar.__exit__(None, None, None)
                pushed = pusher.drain() if pusher else 0
                if pusher:
                    pusher.stop()
                data = {"lines": result.lines, "bytes": result.bytes, "commits": result.commits,
                        "files": result.files, "pushed_messages": pushed}
                if as_json:
                    emit(data, True, "", [])
                else:
                    click.echo(f"read {result.lines} line(s), {result.bytes} byte(s) from {result.files} file(s) "
                               f"in {result.commits} commit(s)" + (f"; pushed {pushed} message(s)" if pusher else ""),
                               err=True)
                return
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            tailer.start()
            if pusher:
                pusher.start()
            click.echo(f"tailing {', '.join(settings.dirs)} as machine {tailer.machine} (store {st.url}"
                       + (f", pushing to {settings.push_url}" if pusher else "") + "); Ctrl-C stops", err=True)
            stop.wait()
            tailer.stop()
            if bar is not None:
                bar.__exit__(None, None, None)
            if pusher:
                pusher.stop()
        finally:
            st.close()

    @main.command()
    @config_options
    @click.option("--client", "clients", multiple=True, help="Client or source name (repeat or comma-separate).")
    @click.option("--type", "types", multiple=True, type=click.Choice(["tx", "rx"]), help="tx (senders) or rx (receivers).")
    @click.option("--machine", "machines", multiple=True, help="Machine name (repeat or comma-separate).")
    @click.option("--product", "products", multiple=True, help="Product type, e.g. SA (repeat or comma-separate).")
    @click.option("--span", default=None, help="How far back from --end (default 24h).")
    @click.option("--start", default=None, help="Start (ISO 8601 or epoch seconds) instead of --span.")
    @click.option("--end", default=None, help="End (default: now).")
    @click.option("--now", "now_at", default=None, help="Take this as the current time.")
    @click.option("--step", default=None, help="One row per step (e.g. 1h); default: one row for the whole span.")
    @click.option("--by", "by", multiple=True, help="Keep apart: type, client, machine, product, or none "
                  "(default: type and client).")
    @click.option("--json", "as_json", is_flag=True)
    @friendly_errors
    def transfers(config_path: str | None, store: str | None, clients: tuple[str, ...], types: tuple[str, ...],
                  machines: tuple[str, ...], products: tuple[str, ...], span: str | None, start: str | None,
                  end: str | None, now_at: str | None, step: str | None, by: tuple[str, ...], as_json: bool) -> None:
        """Transfer statistics: files, bytes, errors, duplicates, files over the maximum
        latency, latency min / mean / median / p95 / max."""
        from telmon.tail.query import transfers as query

        groups = [("direction" if b == "type" else b) for b in by] or ["direction", "client"]
        _, st, ss = _open(config_path, store)
        with st:
            data = query(ss, clients=list(clients), directions=list(types), machines=list(machines),
                         products=list(products), start=start, end=end, span=span, step=step, by=groups,
                         now=_now(now_at))
        cols = [("direction" if g == "direction" else g) for g in data["by"]] + [
            "start", "files", "bytes", "errors", "duplicates", "over_max", "latency_median", "latency_p95",
            "latency_max"]
        emit(data, as_json, "rows", cols)

    @main.command()
    @config_options
    @click.option("--client", "clients", multiple=True, help="Client or source name (repeat; default: all).")
    @click.option("--type", "types", multiple=True, type=click.Choice(["tx", "rx"]))
    @click.option("--since", required=True, help="Forget and collect again everything logged from this time.")
    @click.option("--machine", default=None, help="Machine whose files (default: this host, or tail_machine).")
    @click.option("--now", "now_at", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @friendly_errors
    def rewind(config_path: str | None, store: str | None, clients: tuple[str, ...], types: tuple[str, ...],
               since: str, machine: str | None, now_at: str | None, as_json: bool) -> None:
        """Revert the statistics collected since a time and read those log lines again
        (the old setTimeOfLastUpdates, done safely)."""
        from telmon.tail.admin import rewind as do_rewind
        from telmon.tail.settings import TailSettings
        from telmon.timeutil import parse_time

        cfg, st, ss = _open(config_path, store)
        settings = TailSettings.from_config(cfg).with_(machine=machine)
        with st:
            data = do_rewind(st, ss, machine=settings.machine_name, since=parse_time(since, field="since"),
                             clients=[c for v in clients for c in v.split(",") if c] or None,
                             directions=list(types) or None, push=bool(settings.push_url), now=_now(now_at))
        if as_json:
            emit(data, True, "", [])
            return
        emit(data, False, "files", ["direction", "client", "from_line", "from_offset", "path"])
        click.echo(f"{data['batches_reverted']} batch(es) reverted; the tailer collects them again")
        for k in data["kept"]:
            click.echo(f"kept {k['path']}: {k['why']}", err=True)

    @main.command()
    @config_options
    @click.argument("dest", type=click.Path(dir_okay=False))
    @click.option("--overwrite", is_flag=True)
    @friendly_errors
    def backup(config_path: str | None, store: str | None, dest: str, overwrite: bool) -> None:
        """Copy the store to DEST, consistently, while telmon keeps running (SQLite online backup)."""
        from telmon.tail.admin import backup as do_backup

        cfg = _config(config_path, store)
        data = do_backup(cfg.store_url, dest, overwrite=overwrite)
        click.echo(f"backed up to {data['backup']} ({data['bytes']} bytes, {data['seconds']} s)")

    @main.command()
    @config_options
    @click.argument("src", type=click.Path(exists=True, dir_okay=False))
    @click.option("--yes", is_flag=True, help="Do not ask.")
    @friendly_errors
    def restore(config_path: str | None, store: str | None, src: str, yes: bool) -> None:
        """Replace the store with the backup SRC (the current one is kept beside it).  Stop
        telmon first; the tailer then resumes from the backup's checkpoints."""
        from telmon.tail.admin import restore as do_restore

        cfg = _config(config_path, store)
        if not yes:
            click.confirm(f"Replace {cfg.store_url} with {src}?", abort=True)
        data = do_restore(cfg.store_url, Path(src), now=time.time())
        click.echo(f"restored {data['store']} from {data['restored_from']}"
                   + (f"; the previous content is in {data['previous_kept_as']}" if data["previous_kept_as"] else ""))
