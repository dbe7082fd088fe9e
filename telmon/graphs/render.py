"""Charts -> PNG with matplotlib's Agg backend (no display, no pyplot global state).

Layout is computed in pixels (no tight_layout: it costs more than the drawing), one panel under
another on a shared UTC time axis.  Each panel's title carries its figures for the span:
MAX / MEAN / MIN, median and p95.  NaN values are gaps: lines break, bars are absent, a lone
point between gaps is drawn as a dot, so nothing missing ever looks like a zero.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass

import numpy as np

from telmon.graphs.model import Chart, Line, Panel, Summary

DPI = 100
WIDTH = 1000
PANEL_HEIGHT = 150
_HEAD = 46  # px: the chart title and its notes
_PANEL_TITLE = 26  # px above each panel
_AXIS = 30  # px under the last panel for the time labels
_LEFT, _RIGHT = 74, 24
COLOURS = ("#1f6feb", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#0b7285", "#5c940d", "#e67700", "#364fc7",
           "#a61e4d", "#495057", "#087f5b")
GAP_COLOUR = "#f03e3e"
GRID_COLOUR = "#e5e7eb"
TEXT = "#1d2330"
MUTED = "#6b7280"

# matplotlib's text and font caches are shared by every Figure of a process; the web server
# draws from a thread pool, so draws take turns.
_LOCK = threading.Lock()


@dataclass(slots=True)
class Rendered:
    png: bytes
    width: int
    height: int
    # per panel, the plot area in pixels (left, top, right, bottom), origin top-left: what a
    # test needs to find a time's column, and what an image map would use
    boxes: list[tuple[int, int, int, int]]


def _mpl():  # type: ignore[no-untyped-def]
    """matplotlib, imported on first use (it costs ~0.5 s): `import telmon` stays cheap."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter, MaxNLocator, NullLocator

    return Figure, FigureCanvasAgg, mdates, EngFormatter, NullLocator, MaxNLocator


def fmt(v: float | None, unit: str = "") -> str:
    """A figure for a title: 3 significant digits, SI prefixes for bytes, minutes/hours for
    long latencies."""
    if v is None or not math.isfinite(v):
        return "–"
    if unit == "s" and abs(v) >= 120:
        return f"{v / 3600:.3g} h" if abs(v) >= 7200 else f"{v / 60:.3g} min"
    if unit in ("B", "B/s"):
        for prefix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if abs(v) >= size:
                return f"{v / size:.3g} {prefix}{unit}"
        return f"{v:.3g} {unit}"
    text = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    return f"{text} {unit}".rstrip() if unit != "%" else f"{text}%"


def summary_text(s: Summary | None, unit: str) -> str:
    if s is None:
        return "no data"
    parts = [f"MAX {fmt(s.max, unit)}", f"MEAN {fmt(s.mean, unit)}", f"MIN {fmt(s.min, unit)}"]
    if s.median is not None:
        parts.append(f"median {fmt(s.median, unit)}")
    if s.p95 is not None:
        parts.append(f"p95 {fmt(s.p95, unit)}")
    return "   ".join(parts)


def render(chart: Chart, *, width: int = WIDTH, panel_height: int = PANEL_HEIGHT) -> Rendered:
    """The chart as a PNG (bytes) with each panel's plot box in pixels."""
    width = max(320, min(int(width), 4000))
    panel_height = max(60, min(int(panel_height), 1000))
    with _LOCK:
        return _render(chart, width, panel_height)


def _render(chart: Chart, width: int, panel_height: int) -> Rendered:
    Figure, FigureCanvasAgg, mdates, EngFormatter, NullLocator, MaxNLocator = _mpl()
    n = max(1, len(chart.panels))
    height = _HEAD + n * (_PANEL_TITLE + panel_height) + _AXIS
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    fig.text(_LEFT / width, 1 - 16 / height, chart.title, fontsize=11, fontweight="bold", color=TEXT, va="center")
    if chart.notes:
        fig.text(_LEFT / width, 1 - 34 / height, " · ".join(chart.notes)[:200], fontsize=8, color=MUTED, va="center")
    x0, x1 = chart.start / 86400, chart.end / 86400  # matplotlib dates: days since 1970
    # The time ticks are computed once: the bottom panel shows them, the others only draw
    # their grid lines (tick objects are most of matplotlib's cost per panel).
    ticks = mdates.AutoDateLocator(minticks=4, maxticks=10, tz=mdates.UTC).tick_values(
        mdates.num2date(x0), mdates.num2date(x1))
    ticks = ticks[(ticks >= x0) & (ticks <= x1)]
    boxes = []
    axes = []
    for i, panel in enumerate(chart.panels or [Panel("empty", "no data")]):
        top = _HEAD + i * (_PANEL_TITLE + panel_height) + _PANEL_TITLE
        # not sharex: every limit change would then run through all the panels' callbacks
        ax = fig.add_axes((_LEFT / width, 1 - (top + panel_height) / height, (width - _LEFT - _RIGHT) / width,
                           panel_height / height))
        axes.append(ax)
        boxes.append((_LEFT, top, width - _RIGHT, top + panel_height))
        _panel(ax, panel, chart, EngFormatter, MaxNLocator)
        ax.set_xlim(x0, x1)
        ax.vlines(ticks, 0, 1, transform=ax.get_xaxis_transform(), colors=GRID_COLOUR, linewidth=0.8, zorder=0)
        if i == n - 1:
            locator = mdates.AutoDateLocator(minticks=4, maxticks=10, tz=mdates.UTC)
            ax.xaxis.set_major_locator(locator)
            # no offset text (e.g. '2024-May-01'): the chart title has the date
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=mdates.UTC, show_offset=False))
            ax.tick_params(axis="x", labelsize=8, colors=MUTED, length=3)
        else:
            ax.xaxis.set_major_locator(NullLocator())
    canvas.draw()
    return Rendered(_png(canvas, chart.title), width, height, boxes)


def _png(canvas, title: str) -> bytes:  # type: ignore[no-untyped-def]
    """The canvas as a 128-colour PNG: a third of the bytes of full colour, no visible change
    (a graph has a few colours and their antialiased edges)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    img = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    info = PngInfo()
    info.add_text("Software", "telmon")
    info.add_text("Title", title)
    buf = io.BytesIO()
    img.convert("RGB").quantize(colors=128, method=Image.Quantize.FASTOCTREE).save(buf, "png", pnginfo=info)
    return buf.getvalue()


def _x(chart: Chart) -> tuple[np.ndarray, np.ndarray | None]:
    """Line x (days) and, on a grid, the step edges for bars.  Lines sit mid-step."""
    t = chart.times
    if chart.step:
        edges = np.append(t, t[-1] + chart.step) / 86400 if len(t) else np.zeros(0)
        return (t + chart.step / 2) / 86400, edges
    return t / 86400, None


def _panel(ax, panel: Panel, chart: Chart, EngFormatter, MaxNLocator) -> None:  # type: ignore[no-untyped-def]
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#cbd5e1")
    ax.grid(True, axis="y", color=GRID_COLOUR, linewidth=0.8)
    ax.set_axisbelow(True)
    unit_text = f" ({panel.unit})" if panel.unit else ""
    # plain texts, not set_title: titles re-measure the axes to dodge tick labels on every draw
    ax.text(0, 1.0 + 5 / ax.bbox.height, panel.title + unit_text, transform=ax.transAxes, ha="left", va="bottom",
            fontsize=9.5, fontweight="bold", color=TEXT)
    figures = summary_text(panel.summary, panel.unit)
    if panel.summary_of and panel.summary is not None:
        figures = f"{panel.summary_of}:  {figures}"
    ax.text(1, 1.0 + 5 / ax.bbox.height, figures, transform=ax.transAxes,
            ha="right", va="bottom", fontsize=8.5, color=TEXT)
    for start, end in panel.bands:
        ax.axvspan(start / 86400, end / 86400, color=GAP_COLOUR, alpha=0.08, linewidth=0)
    x, edges = _x(chart)
    drawn = 0
    main_lines = [ln for ln in panel.lines if ln.kind != "band" and not ln.faint]
    for j, line in enumerate(panel.lines):
        colour = COLOURS[main_lines.index(line) % len(COLOURS)] if line in main_lines else "#94a3b8"
        drawn += _line(ax, line, x, edges, colour, len(main_lines) > 1)
    if drawn == 0:
        ax.text(0.5, 0.5, "no data in this span", transform=ax.transAxes, ha="center", va="center", color=MUTED,
                fontsize=9)
        ax.set_yticks([])
    else:
        ax.yaxis.set_major_locator(MaxNLocator(4, min_n_ticks=2))
        if panel.unit in ("B", "B/s"):
            ax.yaxis.set_major_formatter(EngFormatter(sep=""))
        lo, hi = ax.get_ylim()
        if panel.percent or all(ln.kind == "bars" for ln in main_lines):
            ax.set_ylim(0, max(hi, 1e-9))  # counts and percentages start at zero
    ax.tick_params(axis="y", labelsize=8, colors=MUTED, length=3)
    if len(main_lines) > 1:
        legend = ax.legend(loc="upper left", fontsize=7.5, frameon=True, ncol=min(6, len(main_lines)), handlelength=1.2,
                           borderaxespad=0.3, borderpad=0.3, columnspacing=1.0)
        legend.get_frame().set(facecolor="white", edgecolor="none", alpha=0.85)


def _line(ax, line: Line, x: np.ndarray, edges: np.ndarray | None, colour: str, legend: bool) -> int:  # type: ignore[no-untyped-def]
    y = line.values
    ok = np.isfinite(y)
    if not ok.any():
        return 0
    label = line.label if legend and not line.faint and line.kind != "band" else None
    if line.kind == "band" and line.low is not None:
        ax.fill_between(x, line.low, y, color="#94a3b8", alpha=0.25, linewidth=0)
        return 0  # a band alone is context, not data drawn
    if line.kind == "bars" and edges is not None:
        # each step as a flat top from its start to its end; NaN steps split the outline and
        # the fill (Axes.stairs does the same but its patch limits cost 0.1 s per panel)
        sx = np.repeat(edges, 2)[1:-1]
        sy = np.repeat(y, 2)
        ax.fill_between(sx, 0, sy, color=colour, alpha=0.35, linewidth=0)
        ax.plot(sx, sy, color=colour, linewidth=0.9, label=label)
        return int(ok.sum())
    width = 0.8 if line.faint else 1.3
    ax.plot(x, y, color=colour, linewidth=width, alpha=0.8 if line.faint else 1.0, label=label, solid_joinstyle="round")
    # a value with gaps on both sides has no segment to draw: show it as a dot
    prev = np.r_[False, ok[:-1]]
    nxt = np.r_[ok[1:], False]
    alone = ok & ~prev & ~nxt
    if alone.any():
        ax.plot(x[alone], y[alone], linestyle="none", marker="o", markersize=2.5 if not line.faint else 1.5,
                color=colour)
    return int(ok.sum())
