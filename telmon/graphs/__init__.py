"""Graphs (issue 8): PNG images with matplotlib (Agg) and the charts of the web dashboard.

* model.py   -- Chart / Panel / Line on a time grid (NaN = gap), spans and steps (pure);
* sources.py -- charts from the rollups: any series or glob, transfer clients (the MetPX set), hosts;
* stations.py -- station charts from the core tables (entries, lateness, arrivals, gaps);
* render.py  -- Chart -> PNG;
* catalog.py -- what exists (clients, hosts) with headline figures;
* pages.py   -- what each dashboard page shows;
* batch.py   -- every client / station / host in parallel (``telmon graph --all``);
* cli.py     -- ``telmon graph``.

``build_chart`` and ``draw_chart`` are the one entry point the CLI, the HTTP route and the
batch share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from telmon.errors import BadRequest
from telmon.graphs.model import Chart, Span

KINDS = ("series", "client", "host", "station")


def build_chart(store: Any, ss: Any, *, kind: str, span: Span, now: float, series: str | None = None,
                clients: Sequence[str] = (), host: str | None = None, station: str | None = None,
                stat: str = "mean", machine: str | None = None, product: str | None = None,
                params: Sequence[str] | None = None, hosts: Sequence[str] | None = None) -> Chart:
    """The chart of one subject over ``span``.  Raises BadRequest, NotFound (unknown series,
    client, host or station)."""
    from telmon.graphs import sources, stations

    if kind == "series" and series:
        return sources.series_chart(ss, series, span, now=now, stat=stat)
    if kind == "client" and clients:
        return sources.client_chart(ss, clients, span, now=now, machine=machine, product=product)
    if kind == "host" and host:
        if hosts is None:
            from telmon.graphs.catalog import host_names

            hosts = host_names(store, ss)
        return sources.host_chart(ss, host, span, now=now, hosts=hosts)
    if kind == "station" and station:
        return stations.station_chart(store, station, span, now=now, params=params)
    raise BadRequest(f"say what to draw: one of {', '.join(KINDS)}", field="kind")


def draw_chart(store: Any, ss: Any, *, width: int = 1000, panel_height: int = 150, **what: Any) -> bytes:
    """``build_chart(...)`` rendered as PNG bytes."""
    from telmon.graphs.render import render

    return render(build_chart(store, ss, **what), width=width, panel_height=panel_height).png
