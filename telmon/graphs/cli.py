"""``telmon graph``: thin click wrapper over telmon.graphs, added by ``register(main)``.

One graph to a file::

    telmon graph --client tx/amis --span 7d -o amis.png
    telmon graph --client tx/amis --client tx/wxo --span 24h -o both.png
    telmon graph --series 'host.web1.cpu.total' --span year -o cpu.png
    telmon graph --host web1 -o web1.png;  telmon graph --station 12113390 -o st.png

Every client, station and host, in parallel (the MetPX cron use)::

    telmon graph --all --span 24h --out /var/www/graphs [--only clients] [--jobs 2]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click


def register(main: click.Group) -> None:
    """Add ``telmon graph`` to ``main``."""
    from telmon.cli import _config, config_options, friendly_errors

    @main.command("graph")
    @config_options
    @click.option("--series", default=None, help="A series name or glob (e.g. 'host.*.cpu.total').")
    @click.option("--client", "clients", multiple=True,
                  help="Transfer client: tx/NAME, rx/NAME or NAME (all directions). Repeat for several in one image.")
    @click.option("--host", default=None, help="A host's pushed metrics.")
    @click.option("--station", default=None, help="A station's lateness, arrivals and values.")
    @click.option("--all", "every", is_flag=True, help="Every client, station and host, one file each, into --out.")
    @click.option("--only", "groups", multiple=True, type=click.Choice(["clients", "stations", "hosts"]),
                  help="With --all: only these (repeat).")
    @click.option("--span", default="24h", show_default=True, help="24h, 7d, day, week, month, year ... back from --end.")
    @click.option("--start", default=None, help="Start (ISO 8601 or epoch); with --end instead of --span.")
    @click.option("--end", default=None, help="End (default: now).")
    @click.option("--now", "now_at", default=None, help="Take this as the current time.")
    @click.option("--stat", default="mean", show_default=True, help="With --series: the line (mean, max, p95, sum ...).")
    @click.option("--machine", default=None, help="With --client: one machine only.")
    @click.option("--product", default=None, help="With --client: one product type only.")
    @click.option("--width", type=int, default=1000, show_default=True, help="Image width in pixels.")
    @click.option("--height", type=int, default=150, show_default=True, help="Height of each panel in pixels.")
    @click.option("-o", "--out", default=None, help="Output file (one graph) or folder (--all).")
    @click.option("--jobs", type=int, default=None, help="With --all: worker processes (default: half the cores).")
    @click.option("--progress/--no-progress", default=None, help="Progress bar with --all (default: on a terminal).")
    @friendly_errors
    def graph(config_path: str | None, store: str | None, series: str | None, clients: tuple[str, ...],
              host: str | None, station: str | None, every: bool, groups: tuple[str, ...], span: str,
              start: str | None, end: str | None, now_at: str | None, stat: str, machine: str | None,
              product: str | None, width: int, height: int, out: str | None, jobs: int | None,
              progress: bool | None) -> None:
        """Draw PNG graphs: a series, transfer clients (the MetPX set), a host or a station; or
        with --all every client, station and host."""
        from telmon.graphs.model import parse_graph_span
        from telmon.timeutil import parse_time

        cfg = _config(config_path, store)
        now = parse_time(now_at, field="now") if now_at else time.time()
        window = parse_graph_span(span, start, end, now=now)
        if every:
            if any((series, clients, host, station)):
                raise click.UsageError("--all draws everything: leave out --series/--client/--host/--station")
            _draw_all(cfg, groups, window, now, out, jobs, width, height, progress)
            return
        kinds = [k for k, v in (("series", series), ("client", clients), ("host", host), ("station", station)) if v]
        if len(kinds) != 1:
            raise click.UsageError("give one of --series, --client, --host, --station (or --all)")
        store_, ss = _open(cfg)
        try:
            from telmon.graphs import draw_chart

            png = draw_chart(store_, ss, kind=kinds[0], series=series, clients=list(clients), host=host,
                             station=station, span=window, now=now, stat=stat, machine=machine, product=product,
                             width=width, panel_height=height)
        finally:
            store_.close()
        subject = series or "_".join(clients) or host or station or "graph"
        path = Path(out or f"{kinds[0]}-{''.join(c if c.isalnum() or c in '.-_' else '_' for c in subject)}.png")
        path.write_bytes(png)
        click.echo(str(path))


def _open(cfg: Any) -> tuple[Any, Any]:
    from telmon.rollup.store import SeriesStore
    from telmon.store import open_store

    st = open_store(cfg.store_url)
    try:
        return st, SeriesStore(st)
    except BaseException:
        st.close()
        raise


def _draw_all(cfg: Any, groups: tuple[str, ...], window: Any, now: float, out: str | None, jobs: int | None,
              width: int, height: int, progress: bool | None) -> None:
    from telmon.graphs import batch

    if not out:
        raise click.UsageError("--all needs --out DIR")
    st, ss = _open(cfg)
    try:
        items = batch.targets(st, ss, groups or batch.GROUPS)
    finally:
        st.close()
    if not items:
        click.echo("nothing to draw yet: no transfer clients, stations or hosts in this store", err=True)
        return
    show = sys.stderr.isatty() if progress is None else progress
    with click.progressbar(length=len(items), label=f"drawing {len(items)} graphs", file=sys.stderr,
                           show_pos=True, show_eta=True, hidden=not show) as bar:
        result = batch.draw_all(cfg.store_url, items, out, window, now=now, jobs=jobs, width=width, panel_height=height,
                                on_done=lambda target, error: bar.update(1))
    click.echo(f"drew {result.drawn} graph(s) into {out} in {result.seconds:.1f} s with {result.jobs} process(es)"
               + (f"; {result.empty} had no data in the span" if result.empty else ""), err=True)
    for subject, why in result.failed[:20]:
        click.echo(f"  failed: {subject}: {why}", err=True)
    if result.failed:
        raise click.ClickException(f"{len(result.failed)} graph(s) failed")
