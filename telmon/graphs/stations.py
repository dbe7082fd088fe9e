"""Station charts from the core tables: time entries, their values and lateness, arrivals, gaps.

Station values are not rollup series: they are time entries (``entries.vals``, JSON) read from
the files that arrived.  Two ways to read a span, chosen by how many entries it holds:

* up to ``max_points`` entries: each entry is a point (x = its observation time), so an hourly
  station's day shows its 24 values; a line breaks where the spacing is a gap by the store's
  own rule (telmon.gaps: more than 1.5 intervals);
* more: per-step count / mean / min / max grouped in SQL (a year of 15-minute data is 35,000
  rows: grouping them in SQLite is cheaper than moving them to Python), on the epoch-aligned
  grid, with empty steps left as gaps.

Known gaps (the store's gap table, or missing schedule slots) are shaded in every panel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from telmon import gaps as gapmath
from telmon.errors import NotFound
from telmon.graphs.model import MAX_POINTS, NICE_STEPS, Chart, Line, Panel, Span, Summary, grid, on_grid, span_label, \
    step_label
from telmon.timeutil import iso

MAX_PARAMS = 12


def nice_step_at_least(seconds: float) -> int:
    for s in NICE_STEPS:
        if s >= seconds:
            return s
    return int(math.ceil(seconds / 86400)) * 86400


def station_chart(store: Any, code: str, span: Span, *, now: float, max_points: int = MAX_POINTS,
                  max_params: int = MAX_PARAMS, params: Sequence[str] | None = None) -> Chart:
    """Lateness, arrivals and each parameter's values of one station over the span.  Raises
    NotFound for an unknown station."""
    with store._read() as conn:
        row = conn.execute("SELECT id, name, coalesce(interval_s, inferred_interval_s) FROM stations WHERE code = ?",
                           (code,)).fetchone()
        if row is None:
            raise NotFound("station", code)
        sid, name, interval = row
        raw = conn.execute(
            "SELECT observed_at, first_seen_at, vals FROM entries WHERE station_id = ? AND observed_at >= ? "
            "AND observed_at < ? ORDER BY observed_at LIMIT ?", (sid, span.start, span.end, max_points + 1)).fetchall()
        if len(raw) <= max_points:
            chart = _raw_chart(raw, code, span, interval)
        else:
            chart = _bucket_chart(conn, sid, code, span, interval, max_points)
    _keep_params(chart, max_params, params)
    subject = f"station {code}" + (f" ({name})" if name else "")
    chart.title = (f"{subject} — {span_label(span.seconds)} to {iso(span.end)[:16].replace('T', ' ')} UTC · "
                   + ("each time entry" if chart.step == 0 else f"{step_label(chart.step)} steps"))
    gaps = store.station_gaps(span.start, span.end, [code], now=now)
    bands = [(max(g["start"], span.start), min(g["end"], span.end)) for st in gaps for g in st["gaps"]]
    for p in chart.panels:
        p.bands = bands
    if not raw:
        chart.notes.append("no time entries in this span")
    return chart


def _raw_chart(rows: list[tuple[float, float, str]], code: str, span: Span, interval: float | None) -> Chart:
    t = np.array([r[0] for r in rows], np.float64)
    late = np.array([r[1] - r[0] for r in rows], np.float64)
    values = [orjson.loads(r[2]) if r[2] else {} for r in rows]
    if interval is None and len(t) > 2:
        interval = gapmath.infer_interval(t.tolist())
    # break the lines inside every gap: one NaN point midway
    cut = np.flatnonzero(np.diff(t) > interval * (1 + gapmath.DEFAULT_TOLERANCE)) if interval and len(t) > 1 else []
    order = np.concatenate([np.arange(len(t), dtype=np.float64), np.asarray(cut, np.float64) + 0.5])
    pos = np.argsort(order, kind="stable")
    is_break = pos >= len(t)
    times = np.concatenate([t, (t[cut] + t[np.asarray(cut, np.int64) + 1]) / 2 if len(cut) else np.zeros(0)])[pos]

    def spread(v: np.ndarray) -> np.ndarray:
        out = np.full(len(times), np.nan)
        out[~is_break] = v
        return out

    panels = [Panel("lateness", "lateness (first seen − observed)", "s",
                    [Line("lateness", spread(late))], summary=Summary.of_steps(late))]
    if len(late):
        panels[0].summary.over = "entries"  # type: ignore[union-attr]
    names: dict[str, int] = {}
    for v in values:
        for k, x in v.items():
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                names[k] = names.get(k, 0) + 1
    for k in sorted(names, key=lambda k: (-names[k], k)):
        col = np.array([float(v[k]) if isinstance(v.get(k), (int, float)) and not isinstance(v.get(k), bool) else np.nan
                        for v in values], np.float64)
        s = Summary.of_steps(col)
        if s is not None:
            s.over = "entries"
        panels.append(Panel(f"param:{k}", k, "", [Line(k, spread(col))], summary=s))
    return Chart("station", code, "", span.start, span.end, 0, 0, times, panels)


def _bucket_chart(conn: Any, sid: int, code: str, span: Span, interval: float | None, max_points: int) -> Chart:
    # Twice the interval at least, so an on-time station never shows an empty step (a gap)
    # only because its reports jitter across a step boundary.
    step = nice_step_at_least(max(span.seconds / max_points, 2 * (interval or 0), 60))
    times = grid(span.start, span.end, step)
    t0 = float(times[0])
    args = (t0, step, sid, span.start, span.end)
    counts = conn.execute(
        "SELECT CAST((observed_at - ?) / ? AS INTEGER) AS i, count(*), avg(first_seen_at - observed_at), "
        "max(first_seen_at - observed_at) FROM entries WHERE station_id = ? AND observed_at >= ? AND observed_at < ? "
        "GROUP BY i", args).fetchall()
    arrivals = conn.execute(
        "SELECT CAST((received_at - ?) / ? AS INTEGER) AS i, count(*) FROM arrivals WHERE station_id = ? "
        "AND received_at >= ? AND received_at < ? GROUP BY i", args).fetchall()
    params = conn.execute(
        "SELECT CAST((e.observed_at - ?) / ? AS INTEGER) AS i, j.key, count(*), avg(j.value), min(j.value), "
        "max(j.value) FROM entries e, json_each(e.vals) j WHERE e.station_id = ? AND e.observed_at >= ? "
        "AND e.observed_at < ? AND j.type IN ('integer', 'real') GROUP BY i, j.key", args).fetchall()

    def col(rows: list[tuple[Any, ...]], k: int) -> np.ndarray:
        idx = np.array([r[0] for r in rows], np.float64)
        return on_grid(t0 + idx * step, times, np.array([r[k] for r in rows], np.float64), step)

    entries = col(counts, 1)
    late_mean, late_max = col(counts, 2), col(counts, 3)
    arrived = col(arrivals, 1)
    panels = [
        Panel("entries", "time entries", "", [Line("entries", entries, kind="bars")], summary=Summary.of_steps(entries)),
        Panel("lateness", "lateness (first seen − observed)", "s",
              [Line("max", late_max, faint=True), Line("mean", late_mean)], summary=Summary.of_steps(late_mean)),
        Panel("arrivals", "arrivals", "", [Line("arrivals", arrived, kind="bars")], summary=Summary.of_steps(arrived)),
    ]
    by_key: dict[str, list[tuple[Any, ...]]] = {}
    for r in params:
        by_key.setdefault(r[1], []).append(r)
    for k in sorted(by_key, key=lambda k: (-sum(r[2] for r in by_key[k]), k)):
        rows = by_key[k]
        n = sum(r[2] for r in rows)
        mean = sum(r[3] * r[2] for r in rows) / n
        summary = Summary(max(r[5] for r in rows), mean, min(r[4] for r in rows), None, None, n, "entries")
        panels.append(Panel(f"param:{k}", k, "", [Line("min–max", col(rows, 5), kind="band", low=col(rows, 4)),
                                                   Line(f"{k} mean", col(rows, 3))], summary=summary))
    return Chart("station", code, "", span.start, span.end, step, 0, times, panels)


def _keep_params(chart: Chart, limit: int, wanted: Sequence[str] | None) -> None:
    """At most ``limit`` parameter panels (the most reported first), or the ones asked for."""
    fixed = [p for p in chart.panels if not p.key.startswith("param:")]
    params = [p for p in chart.panels if p.key.startswith("param:")]
    if wanted:
        keep = [p for p in params if p.key[6:] in set(wanted)]
    else:
        keep = params[:limit]
    if len(keep) < len(params) and not wanted:
        chart.notes.append(f"{len(params) - len(keep)} more parameters not drawn (ask with param=NAME)")
    chart.panels = fixed + keep


def station_params(store: Any, code: str, span: Span) -> list[str]:
    """Names of the numeric parameters a station reported in the span, most reported first."""
    with store._read() as conn:
        rows = conn.execute(
            "SELECT j.key, count(*) FROM entries e JOIN stations s ON s.id = e.station_id, json_each(e.vals) j "
            "WHERE s.code = ? AND e.observed_at >= ? AND e.observed_at < ? GROUP BY j.key ORDER BY 2 DESC, 1",
            (code, span.start, span.end)).fetchall()
    return [r[0] for r in rows]
