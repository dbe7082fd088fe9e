"""What there is to look at: transfer clients, hosts and stations, with their headline figures.

The lists behind the dashboard's index pages and ``telmon graph --all``.  Each answers from as
few reads as it can: one glob read per transfer metric for all clients (per series, grouped
here), one merged read per client only where a quantile needs the client's own sketch.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from typing import Any

from telmon.rollup.errors import UnknownSeries
from telmon.tail.names import parse_series, pattern
from telmon.timeutil import iso

_SUMS = ("bytes", "errors", "over_max")


def transfer_clients(ss: Any) -> list[tuple[str, str]]:
    """(direction, client) of every client or source with transfer series, sorted."""
    found = set()
    for r in ss.list_series(pattern()):
        key = parse_series(r.name)
        if key is not None:
            found.add((key.direction, key.client))
    return sorted(found)


def _num(v: Any) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def client_totals(ss: Any, start: float, end: float, *, now: float, quantiles: bool = True,
                  clients: Sequence[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """Per client over [start, end): files, bytes, errors, files over the maximum latency (and
    %), latency mean / max (and median / p95 from the client's merged sketch when
    ``quantiles``), machines, products and the newest sample time."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    last: dict[tuple[str, str], float] = {}
    machines: dict[tuple[str, str], set[str]] = {}
    products: dict[tuple[str, str], set[str]] = {}
    for r in ss.list_series(pattern()):
        key = parse_series(r.name)
        if key is None:
            continue
        k = (key.direction, key.client)
        machines.setdefault(k, set()).add(key.machine)
        products.setdefault(k, set()).add(key.product)
        if r.last_us is not None:
            last[k] = max(last.get(k, 0.0), r.last_us / 1e6)
    wanted = sorted(clients if clients is not None else machines)
    for k in wanted:
        rows[k] = {"direction": k[0], "client": k[1], "files": 0, "bytes": 0, "errors": 0, "over_max": 0,
                   "over_max_pct": None, "latency_mean": None, "latency_max": None, "latency_median": None,
                   "latency_p95": None, "machines": sorted(machines.get(k, ())), "products": sorted(products.get(k, ())),
                   "last": iso(last.get(k))}
    latency_sum: dict[tuple[str, str], float] = {}
    for metric in ("latency", *_SUMS):
        stats = ("count", "sum", "max") if metric == "latency" else ("sum",)
        try:
            ans = ss.series(pattern(metric=metric), start, end, step=0, stats=stats, now=now)
        except UnknownSeries:
            continue
        for s in ans.series:
            key = parse_series(s.name)
            if key is None or (key.direction, key.client) not in rows or not s.points:
                continue
            row = rows[(key.direction, key.client)]
            p = s.points[0]
            if metric == "latency":
                row["files"] += int(p.get("count") or 0)
                latency_sum[(key.direction, key.client)] = latency_sum.get((key.direction, key.client), 0.0) + \
                    (_num(p.get("sum")) or 0.0)
                mx = _num(p.get("max"))
                if mx is not None and (row["latency_max"] is None or mx > row["latency_max"]):
                    row["latency_max"] = mx
            else:
                row[metric] += int(round(_num(p.get("sum")) or 0))
    for k, row in rows.items():
        if row["files"]:
            row["latency_mean"] = latency_sum.get(k, 0.0) / row["files"]
            row["over_max_pct"] = 100.0 * row["over_max"] / row["files"]
            if quantiles:
                # the client's own distribution: its machines' and products' sketches merged
                ans = ss.series(pattern(k[0], k[1], metric="latency"), start, end, step=0, stats=("p50", "p95"),
                                agg="merge", now=now)
                p = ans.series[0].points[0] if ans.series and ans.series[0].points else {}
                row["latency_median"], row["latency_p95"] = _num(p.get("p50")), _num(p.get("p95"))
    return list(rows.values())


def transfer_total(ss: Any, start: float, end: float, *, now: float) -> dict[str, Any] | None:
    """All clients together over [start, end): files, bytes, errors, over max, latency p95
    (one merged distribution of every file).  None when there are no transfer series."""
    out: dict[str, Any] = {"files": 0, "bytes": 0, "errors": 0, "over_max": 0, "latency_median": None,
                           "latency_p95": None, "latency_max": None}
    any_series = False
    for metric in ("latency", *_SUMS):
        stats = ("count", "p50", "p95", "max") if metric == "latency" else ("sum",)
        try:
            ans = ss.series(pattern(metric=metric), start, end, step=0, stats=stats, agg="merge", now=now)
        except UnknownSeries:
            continue
        any_series = True
        p = ans.series[0].points[0] if ans.series and ans.series[0].points else {}
        if metric == "latency":
            out["files"] = int(p.get("count") or 0)
            out["latency_median"], out["latency_p95"] = _num(p.get("p50")), _num(p.get("p95"))
            out["latency_max"] = _num(p.get("max"))
        else:
            out[metric] = int(round(_num(p.get("sum")) or 0))
    if not any_series:
        return None
    out["over_max_pct"] = 100.0 * out["over_max"] / out["files"] if out["files"] else None
    return out


# --- hosts --------------------------------------------------------------------------------------

GLANCE = (("cpu", "cpu.total"), ("load", "load.1m"), ("mem", "mem.percent"))


def host_names(store: Any, ss: Any) -> list[str]:
    """Hosts that pushed metrics: the push component's table when it exists (it knows dotted
    names), else the second part of every ``host.*`` series name."""
    try:
        with store._read() as conn:
            return [r[0] for r in conn.execute("SELECT name FROM push_hosts ORDER BY name")]
    except sqlite3.OperationalError:  # no push tables in this store: fall back to the names
        return sorted({r.name.split(".")[1] for r in ss.list_series("host.*") if r.name.count(".") >= 2})


def hosts_glance(store: Any, ss: Any, *, now: float, window: float = 600.0) -> list[dict[str, Any]]:
    """Every host with its newest sample time, its number of series and, over the last
    ``window`` seconds, mean CPU %, 1-minute load, memory % and its fullest disk."""
    names = host_names(store, ss)
    rows = ss.list_series("host.*")
    out = {h: {"host": h, "series": 0, "last": None, "cpu": None, "load": None, "mem": None, "disk": None,
               "disk_mount": None} for h in names}
    # longest names first, so host "a.b" claims host.a.b.* before host "a" would
    by_length = sorted(names, key=len, reverse=True)

    def owner(series: str) -> str | None:
        for h in by_length:
            if series.startswith(f"host.{h}."):
                return h
        return None

    last: dict[str, float] = {}
    for r in rows:
        h = owner(r.name)
        if h is None:
            continue
        out[h]["series"] += 1
        if r.last_us is not None:
            last[h] = max(last.get(h, 0.0), r.last_us / 1e6)
    for h, t in last.items():
        out[h]["last"] = iso(t)
    for field, label in (*GLANCE, ("disk", "disk.*.percent")):
        try:
            ans = ss.series(f"host.*.{label}", now - window, now, step=0, stats=("mean",), now=now)
        except UnknownSeries:
            continue
        for s in ans.series:
            h = owner(s.name)
            if h is None or not s.points:
                continue
            v = _num(s.points[0].get("mean"))
            if v is None:
                continue
            if field == "disk":
                if out[h]["disk"] is None or v > out[h]["disk"]:
                    out[h]["disk"], out[h]["disk_mount"] = v, s.name[len(f"host.{h}.disk."):-len(".percent")]
            elif s.name == f"host.{h}.{label}":
                out[h][field] = v
    return [out[h] for h in names]
