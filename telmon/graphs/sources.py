"""Charts from the rollups: any series or glob, transfer clients (the MetPX set) and hosts.

Each builder reads the tier that fits the span (the rollup store chooses it: a day from 1-minute
buckets, a month or a year from 1-hour buckets, longer from days) at a step giving about one
point per pixel, and returns a ``Chart``.  Station charts read the core tables: stations.py.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from telmon.errors import BadRequest, NotFound
from telmon.graphs.model import MAX_POINTS, Chart, Line, Panel, Span, Summary, close_short_runs, grid, on_grid, pick_step, \
    span_label, step_label
from telmon.rollup.errors import UnknownSeries
from telmon.rollup.tiers import choose_tier
from telmon.tail.names import DIRECTIONS, parse_series, pattern
from telmon.timeutil import iso

MAX_LINES = 12  # more series than this in one panel are merged into one distribution
MAX_CLIENTS = 20
QUIET_SECONDS = 900  # transfer logs silent this long (or 3 steps) draw a gap, not zeros
_SPAN_STATS = ("count", "max", "mean", "min", "p50", "p95")


def _summary(point: dict[str, Any] | None) -> Summary | None:
    if not point or not point.get("count"):
        return None

    def num(k: str) -> float | None:
        v = point.get(k)
        return None if v is None or not math.isfinite(v) else float(v)

    return Summary(num("max"), num("mean"), num("min"), num("p50"), num("p95"), int(point["count"]), "samples")


def _columns(points: list[dict[str, Any]], times: np.ndarray, step: int, stats: Sequence[str]) -> dict[str, np.ndarray]:
    t = np.fromiter((p["t"] for p in points), np.float64, len(points))
    out = {}
    for s in stats:
        v = np.fromiter((np.nan if p.get(s) is None else p[s] for p in points), np.float64, len(points))
        out[s] = on_grid(t, times, v, step)
    return out


def _step_for(ss: Any, name_or_pattern: str, span: Span, now: float, max_points: int) -> tuple[int, list[Any]]:
    rows = ss.list_series(name_or_pattern)
    if not rows:
        raise UnknownSeries(name_or_pattern)
    choice = choose_tier(rows[0].policy, span.start, span.end, now)
    return pick_step(choice.step, span.seconds, max_points), rows


def _title(subject: str, span: Span, step: int, tier: int) -> str:
    source = "raw samples" if tier == 0 else f"{step_label(tier)} buckets"
    return (f"{subject} — {span_label(span.seconds)} to {iso(span.end)[:16].replace('T', ' ')} UTC"
            f" · {step_label(step)} steps from {source}")


# --- any series -------------------------------------------------------------------------------


def series_chart(ss: Any, name_or_pattern: str, span: Span, *, now: float, stat: str = "mean",
                 max_points: int = MAX_POINTS) -> Chart:
    """One panel: the series (or every series the glob matches, merged into one distribution
    past MAX_LINES) per step: ``stat`` as the line, min-max as a band for a single series.
    Title figures are over every sample of the span (quantiles from merged sketches)."""
    step, rows = _step_for(ss, name_or_pattern, span, now, max_points)
    times = grid(span.start, span.end, step)
    merge = len(rows) > MAX_LINES
    stats = sorted({"count", "min", "max", "mean", stat})
    try:
        ans = ss.series(name_or_pattern, span.start, span.end, step=step, stats=stats, agg="merge" if merge else None,
                        now=now)
        whole = ss.series(name_or_pattern, span.start, span.end, step=0, stats=_SPAN_STATS, agg="merge", now=now)
    except ValueError as exc:
        raise BadRequest(str(exc), field="stat") from None
    panel = Panel(key=name_or_pattern, title=name_or_pattern if len(rows) == 1 else f"{name_or_pattern} ({len(rows)} series)")
    for s in ans.series:
        cols = _columns(s.points, times, step, stats)
        label = s.name if not merge else f"{len(rows)} series merged"
        if len(ans.series) == 1 and stat in ("mean", "p50", "median"):
            panel.lines.append(Line("min–max", cols["max"], kind="band", low=cols["min"]))
        panel.lines.append(Line(f"{label} {stat}" if len(ans.series) == 1 else label, cols[stat]))
    if ans.series and ans.series[0].points:
        panel.summary = _summary(whole.series[0].points[0] if whole.series and whole.series[0].points else None)
    tier = ans.series[0].tier if ans.series else 0
    chart = Chart("series", name_or_pattern, _title(name_or_pattern, span, step, tier), span.start, span.end, step,
                  tier, times, [panel], list(ans.notes))
    if merge:
        chart.notes.append(f"{len(rows)} series match: drawn as one merged distribution")
    if not ans.covered:
        chart.notes.append("the span reaches back beyond every tier's retention: older data is not kept")
    return chart


# --- transfer clients: the MetPX set --------------------------------------------------------------

METPX_PANELS = (
    ("latency", "latency", "s"),
    ("bytes", "bytes", "B"),
    ("errors", "errors", ""),
    ("files", "files", ""),
    ("over_max", "files over max latency", ""),
    ("over_max_pct", "files over max latency", "%"),
)


def parse_client(text: str) -> tuple[str | None, str]:
    """'tx/amis' -> ('tx', 'amis'); 'amis' -> (None, 'amis') meaning every direction it has."""
    head, sep, rest = str(text).strip().partition("/")
    if sep and head in DIRECTIONS and rest:
        return head, rest
    if not text.strip():
        raise BadRequest("give a client as tx/NAME, rx/NAME or NAME", field="client")
    return None, text.strip()


def resolve_clients(ss: Any, names: Sequence[str]) -> list[tuple[str, str]]:
    """(direction, client) pairs that have transfer series; NotFound for a name with none,
    BadRequest past MAX_CLIENTS (one line each: more would be unreadable)."""
    if len(names) > MAX_CLIENTS:
        raise BadRequest(f"at most {MAX_CLIENTS} clients in one image", field="client")
    out: list[tuple[str, str]] = []
    for text in names:
        direction, client = parse_client(text)
        found = sorted({(k.direction, k.client) for r in ss.list_series(pattern(direction, client, None, None, "latency"))
                        if (k := parse_series(r.name)) is not None}
                       | {(k.direction, k.client) for r in ss.list_series(pattern(direction, client, None, None, "errors"))
                          if (k := parse_series(r.name)) is not None})
        if not found:
            raise NotFound("transfer client", text)
        out += [f for f in found if f not in out]
    return out


class _ClientData:
    """Per-step MetPX quantities of one client (all its machines and products merged)."""

    def __init__(self, ss: Any, direction: str, client: str, span: Span, step: int, times: np.ndarray, now: float,
                 machine: str | None = None, product: str | None = None) -> None:
        self.tier = 0
        self.latency: dict[str, np.ndarray] = {}
        self.sums: dict[str, np.ndarray] = {}
        self.whole: Summary | None = None

        def read(metric: str, stats: Sequence[str], step_: int) -> Any:
            try:
                return ss.series(pattern(direction, client, machine, product, metric), span.start, span.end,
                                 step=step_, stats=stats, agg="merge", now=now)
            except UnknownSeries:
                return None

        lat = read("latency", ("count", "mean", "min", "max", "p50", "p95"), step)
        nan = np.full(len(times), np.nan)
        if lat is not None and lat.series:
            self.latency = _columns(lat.series[0].points, times, step, ("count", "mean", "min", "max", "p50", "p95"))
            self.tier = max(self.tier, lat.series[0].tier)
            whole = read("latency", _SPAN_STATS, 0)
            self.whole = _summary(whole.series[0].points[0]) if whole and whole.series and whole.series[0].points else None
        for metric in ("bytes", "errors", "over_max"):
            ans = read(metric, ("sum",), step)
            self.sums[metric] = _columns(ans.series[0].points, times, step, ("sum",))["sum"] if ans and ans.series else nan
            if ans and ans.series:
                self.tier = max(self.tier, ans.series[0].tier)
        files = self.latency.get("count", nan)
        # A step is covered when any line of the logs fell in it; there an absent count is a
        # true zero.  Empty steps are zeros too when they are a short lull between covered
        # ones (a quiet minute); a longer silence stays a gap: telmon cannot tell quiet from unread.
        covered = np.isfinite(files)
        for v in self.sums.values():
            covered |= np.isfinite(v)
        covered = close_short_runs(covered, max(3, QUIET_SECONDS // step))
        self.covered = covered
        self.files = np.where(covered, np.nan_to_num(files), np.nan)
        for k in list(self.sums):
            self.sums[k] = np.where(covered, np.nan_to_num(self.sums[k]), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.over_pct = np.where(self.files > 0, 100.0 * self.sums["over_max"] / self.files, np.nan)


def client_chart(ss: Any, clients: Sequence[str], span: Span, *, now: float, machine: str | None = None,
                 product: str | None = None, max_points: int = MAX_POINTS) -> Chart:
    """The MetPX set for one or many clients: latency, bytes, errors, files, files over the
    maximum latency (count and %), one line per client.  Raises NotFound for an unknown client."""
    pairs = resolve_clients(ss, clients)
    first = ss.list_series(pattern(pairs[0][0], pairs[0][1], None, None, None))
    choice = choose_tier(first[0].policy, span.start, span.end, now)
    step = pick_step(choice.step, span.seconds, max_points)
    times = grid(span.start, span.end, step)
    data = [(f"{d} {c}", _ClientData(ss, d, c, span, step, times, now, machine, product)) for d, c in pairs]
    many = len(data) > 1
    panels = {key: Panel(key, title, unit, percent=unit == "%") for key, title, unit in METPX_PANELS}
    for label, d in data:
        lat = d.latency
        if lat:
            if not many:
                panels["latency"].lines.append(Line("max", lat["max"], faint=True))
                panels["latency"].lines.append(Line("p95", lat["p95"], faint=True))
            panels["latency"].lines.append(Line(label if many else "mean", lat["mean"], summary=d.whole))
        else:
            panels["latency"].lines.append(Line(label if many else "mean", np.full(len(times), np.nan)))
        for key, values in (("bytes", d.sums["bytes"]), ("errors", d.sums["errors"]), ("files", d.files),
                            ("over_max", d.sums["over_max"]), ("over_max_pct", d.over_pct)):
            panels[key].lines.append(Line(label if many else key, values, kind="line" if many else "bars",
                                          summary=Summary.of_steps(values)))
    if many:
        # A panel's title figures: the clients' per-step totals (latency: the extremes and the
        # file-weighted mean; quantiles of different clients' files are in each legend entry).
        for key in ("bytes", "errors", "files", "over_max"):
            stack = np.vstack([ln.values for ln in panels[key].lines])
            total = np.where(np.isfinite(stack).any(axis=0), np.nansum(stack, axis=0), np.nan)
            panels[key].summary = Summary.of_steps(total)
        files = np.vstack([d.files for _, d in data])
        over = np.vstack([d.sums["over_max"] for _, d in data])
        with np.errstate(invalid="ignore", divide="ignore"):
            pct = np.where(np.nansum(files, axis=0) > 0, 100 * np.nansum(over, axis=0) / np.nansum(files, axis=0), np.nan)
        panels["over_max_pct"].summary = Summary.of_steps(pct)
        wholes = [d.whole for _, d in data if d.whole is not None]
        if wholes:
            n = sum(w.count or 0 for w in wholes)
            mean = sum((w.mean or 0) * (w.count or 0) for w in wholes) / n if n else None
            panels["latency"].summary = Summary(max(w.max for w in wholes if w.max is not None),  # type: ignore[type-var]
                                                mean, min(w.min for w in wholes if w.min is not None),  # type: ignore[type-var]
                                                None, None, n, "samples")
    else:
        for p in panels.values():
            p.summary = p.lines[-1].summary
    subject = ", ".join(label for label, _ in data)
    if machine:
        subject += f" on {machine}"
    if product:
        subject += f" ({product})"
    tier = max(d.tier for _, d in data)
    return Chart("client", subject, _title(subject, span, step, tier), span.start, span.end, step, tier, times,
                 list(panels.values()))


# --- hosts (pushed agent metrics) -----------------------------------------------------------------

# (panel key, title, unit, label patterns in order); a label goes to the first panel matching it.
HOST_PANELS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("cpu", "CPU", "%", ("cpu.total", "cpu.core.")),
    ("load", "load average", "", ("load.",)),
    ("mem", "memory and swap used", "%", ("mem.percent", "swap.percent")),
    ("disk", "disk space used", "%", ("disk.*.percent",)),
    ("diskio", "disk I/O", "B/s", ("diskio.*.read_bytes_per_s", "diskio.*.write_bytes_per_s")),
    ("net", "network", "B/s", ("net.*.bytes_sent_per_s", "net.*.bytes_recv_per_s")),
    ("neterr", "network errors and drops", "/s", ("net.*.errin_per_s", "net.*.errout_per_s", "net.*.dropin_per_s",
                                                  "net.*.dropout_per_s")),
    ("procs", "processes", "", ("procs.count",)),
    ("spool", "agent spool", "", ("agent.spool.",)),
)
_SKIP = ("mem.total", "mem.available", "mem.used", "swap.total", "swap.used", "disk.*.total", "disk.*.used",
         "disk.*.free", "diskio.*.reads_per_s", "diskio.*.writes_per_s", "net.*.packets_sent_per_s",
         "net.*.packets_recv_per_s")


def _label_matches(label: str, pat: str) -> bool:
    if "*" in pat:
        head, _, tail = pat.partition("*")
        return label.startswith(head) and label.endswith(tail) and len(label) > len(head) + len(tail)
    return label == pat or (pat.endswith(".") and label.startswith(pat))


def host_panel_of(label: str) -> tuple[str, str, str] | None:
    """(key, title, unit) of the panel a host metric label is drawn in, None for the ones left
    out (totals and packet counts the other panels already tell); any other label gets its own."""
    for key, title, unit, pats in HOST_PANELS:
        if any(_label_matches(label, p) for p in pats):
            return key, title, unit
    if any(_label_matches(label, p) for p in _SKIP):
        return None
    return f"x:{label}", label, ""


def host_chart(ss: Any, host: str, span: Span, *, now: float, max_points: int = MAX_POINTS,
               max_cores: int = 16, hosts: Sequence[str] = ()) -> Chart:
    """A host's pushed metrics (series ``host.<host>.<label>``), grouped into panels: CPU, load,
    memory, disks, I/O, network, processes.  Two reads for all of them: the steps, and the span
    figures.  ``hosts``: every known host, so host ``a``'s page leaves out host ``a.b``'s series.
    Raises NotFound for a host with no series."""
    prefix = f"host.{host}."
    glob = prefix + "*"  # host names hold no glob characters (telmon.push checks them)
    longer = tuple(f"host.{h}." for h in hosts if h.startswith(host + "."))
    step, rows = _step_for(ss, glob, span, now, max_points)
    times = grid(span.start, span.end, step)
    stats = ("count", "mean", "min", "max")
    ans = ss.series(glob, span.start, span.end, step=step, stats=stats, now=now)
    whole = ss.series(glob, span.start, span.end, step=0, stats=_SPAN_STATS, now=now)
    totals = {s.name: _summary(s.points[0] if s.points else None) for s in whole.series}
    panels: dict[str, Panel] = {}
    cores = sum(1 for r in rows if r.name.startswith(prefix + "cpu.core."))
    tier = 0
    for s in sorted(ans.series, key=lambda s: _natural(s.name)):
        if longer and s.name.startswith(longer):
            continue
        label = s.name[len(prefix):]
        where = host_panel_of(label)
        if where is None or (label.startswith("cpu.core.") and cores > max_cores):
            continue
        key, title, unit = where
        panel = panels.get(key) or panels.setdefault(key, Panel(key, title, unit, percent=unit == "%"))
        col = _columns(s.points, times, step, ("mean",))["mean"]
        panel.lines.append(Line(_short(label, key), col, faint=label.startswith("cpu.core."), summary=totals.get(s.name)))
        tier = max(tier, s.tier)
    order = [k for k, *_ in HOST_PANELS]
    out = sorted(panels.values(), key=lambda p: (order.index(p.key) if p.key in order else len(order), p.key))
    for p in out:
        main = [ln for ln in p.lines if not ln.faint] or p.lines
        # several lines: the title tells the first one's figures (total, 1m, mem, the first
        # disk...); each line's own are in the legend / the page's table
        p.summary = main[0].summary
        p.summary_of = main[0].label if len(main) > 1 else None
    if not out:
        raise NotFound("host metrics for", host)
    title = f"host {host}"
    return Chart("host", host, _title(title, span, step, tier), span.start, span.end, step, tier, times, out)


def _short(label: str, key: str) -> str:
    """Legend text: the label less what the panel title already says."""
    if key == "cpu":
        return "total" if label == "cpu.total" else "core " + label.rsplit(".", 1)[-1]
    if key == "disk":
        return label[len("disk."):-len(".percent")] or "/"
    if key in ("diskio", "net", "neterr"):
        return label.split(".", 1)[1].replace("_per_s", "").replace("_bytes", "").replace("bytes_", "")
    if key == "mem":
        return label.split(".")[0]
    if key in ("load", "spool"):
        return label.split(".", 1)[1]
    return label


def _natural(name: str) -> list[Any]:
    """cpu.core.2 before cpu.core.10, load.5m before load.15m."""
    return [(int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"(\d+)", name) if p]
