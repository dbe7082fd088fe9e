"""PNG graphs: the maths of spans, steps and gaps; charts from the rollups and from station
entries; and the images themselves, read back pixel by pixel (a known spike is where it
should be, a gap stays blank)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from telmon.errors import BadRequest, NotFound
from telmon.graphs import build_chart, draw_chart
from telmon.graphs.model import Summary, close_short_runs, grid, on_grid, parse_graph_span, pick_step
from telmon.graphs.pages import periods
from telmon.graphs.render import COLOURS, fmt, render, summary_text
from telmon.graphs.sources import client_chart, host_chart, series_chart
from telmon.graphs.stations import station_chart
from telmon.rollup.store import SeriesStore
from telmon.store.sqlite import SQLiteStore
from tests.dashboard.sample import GAP, NOW, SPIKE_AT

DAY = 86400.0


# --- pure maths -----------------------------------------------------------------------------------


def test_spans_and_steps():
    s = parse_graph_span("day", now=NOW)
    assert (s.start, s.end) == (NOW - DAY, NOW)
    assert parse_graph_span("7d", end="2024-05-01T00:00:00Z", now=NOW).seconds == 7 * DAY
    assert parse_graph_span(None, "2024-04-01", "2024-04-02", now=NOW).seconds == DAY
    for bad in ({"span": "fortnight"}, {"start": "2024-05-02", "end": "2024-05-01"}, {"span": "20y"}):
        with pytest.raises(BadRequest):
            parse_graph_span(now=NOW, **bad)
    # about one point per pixel, in whole tier steps: a day of minutes, a week of 10 minutes,
    # a year of 6-hour steps from the hourly tier
    assert pick_step(60, DAY) == 60
    assert pick_step(60, 7 * DAY) == 600
    assert pick_step(3600, 365 * DAY) == 21600
    assert pick_step(86400, 10 * 365 * DAY) == 7 * 86400


def test_grid_places_values_and_leaves_gaps():
    times = grid(100, 400, 60)
    assert times.tolist() == [60, 120, 180, 240, 300, 360]
    v = on_grid(np.array([120.0, 300.0]), times, np.array([5.0, 7.0]), 60)
    assert np.isnan(v[[0, 2, 3, 5]]).all() and v[1] == 5 and v[4] == 7


def test_short_lulls_are_zeros_long_silences_gaps():
    covered = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1], bool)
    out = close_short_runs(covered, 3)
    assert out.tolist() == [True] * 6 + [False] * 5 + [True]


def test_summary_of_steps_and_title_text():
    s = Summary.of_steps(np.array([1.0, np.nan, 3.0, 2.0]))
    assert (s.max, s.mean, s.min, s.median, s.count) == (3.0, 2.0, 1.0, 2.0, 3)
    assert Summary.of_steps(np.array([np.nan])) is None
    text = summary_text(Summary(600.0, 1.5, 0.01, 1.2, 4.0, 10), "s")
    assert text.startswith("MAX 10 min") and "MEAN 1.5 s" in text and "MIN 0.01 s" in text
    assert "median 1.2 s" in text and "p95 4 s" in text
    assert fmt(2.5e6, "B") == "2.5 MB" and fmt(12.3456, "%") == "12.3%" and fmt(None) == "–"


def test_metpx_periods():
    day = periods("day", now=NOW)
    assert [p["label"] for p in day][:2] == ["Wed 01 May", "Tue 30 Apr"] and len(day) == 7
    assert day[0]["current"] and day[0]["end_t"] == NOW and not day[1]["current"]
    assert [p["label"] for p in periods("month", now=NOW)] == ["May 2024", "Apr 2024", "Mar 2024"]
    assert [p["label"] for p in periods("year", now=NOW)] == ["2024", "2023", "2022"]
    weeks = periods("week", now=NOW)
    assert len(weeks) == 5 and weeks[0]["start"] == "2024-04-29T00:00:00Z"  # ISO weeks start on Monday
    with pytest.raises(NotFound):
        periods("decade", now=NOW)


# --- the image, pixel by pixel ----------------------------------------------------------------------


@pytest.fixture
def signal(tmp_path: Path):
    """test.signal: 10 every minute for a day, 100 at SPIKE_AT, nothing during GAP."""
    store = SQLiteStore(tmp_path / "t.db")
    ss = SeriesStore(store)
    t = np.arange(NOW - DAY, NOW, 60.0)
    t = t[(t < GAP[0]) | (t >= GAP[1])]
    v = np.full(len(t), 10.0)
    v[t == SPIKE_AT] = 100.0
    ss.write([("test.signal", t, v)], now=NOW)
    yield store, ss
    store.close()


def _line_pixels(png: bytes, box: tuple[int, int, int, int], colour: str) -> np.ndarray:
    """Mask (rows x columns of the plot box) of the pixels drawn in the line's colour."""
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    left, top, right, bottom = box
    area = img[top:bottom, left:right]
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return np.abs(area - rgb).sum(axis=2) < 60


def test_png_decodes_with_the_size_asked(signal):
    store, ss = signal
    chart = series_chart(ss, "test.signal", parse_graph_span("24h", now=NOW), now=NOW)
    out = render(chart, width=900, panel_height=200)
    assert out.png[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(out.png))
    img.load()
    assert img.size == (900, out.height) and out.height > 200
    left, top, right, bottom = out.boxes[0]
    assert 0 < left < right <= 900 and 0 < top < bottom < out.height and bottom - top == 200


def test_spike_is_where_it_happened_and_the_gap_stays_blank(signal):
    store, ss = signal
    span = parse_graph_span("24h", now=NOW)
    chart = series_chart(ss, "test.signal", span, now=NOW)
    assert chart.step == 60 and chart.tier == 60
    assert chart.panels[0].summary.max == 100 and chart.panels[0].summary.min == 10
    out = render(chart, width=1000, panel_height=200)
    left, top, right, bottom = out.boxes[0]
    drawn = _line_pixels(out.png, out.boxes[0], COLOURS[0])
    width = right - left

    def column(t: float) -> float:
        return (t - span.start) / span.seconds * width

    # the spike: the column whose line pixel reaches highest, at the spike's minute (lines
    # are drawn mid-step)
    highest = np.where(drawn.any(axis=0), drawn.argmax(axis=0), drawn.shape[0])
    found = int(highest.argmin())
    assert abs(found - column(SPIKE_AT + 30)) <= 3, (found, column(SPIKE_AT + 30))
    assert highest[found] < drawn.shape[0] * 0.2  # it reaches the top fifth: 100 against 10
    # the gap: no line pixel at all between its ends (not even a zero line at the bottom)...
    a, b = int(column(GAP[0])) + 3, int(column(GAP[1])) - 3
    assert b - a > 60
    assert not drawn[:, a:b].any()
    # ...while the hours on either side are drawn
    assert drawn[:, a - 60:a - 10].any(axis=0).all() and drawn[:, b + 10:b + 60].any(axis=0).all()


def test_many_series_in_one_image_and_the_year_from_hourly_buckets(tmp_path: Path):
    store = SQLiteStore(tmp_path / "t.db")
    ss = SeriesStore(store)
    t = np.arange(NOW - 365 * DAY, NOW, 3600.0)
    ss.write([(f"room.{k}.temp", t, 20 + k + np.sin(t / DAY)) for k in range(5)], now=NOW)
    chart = series_chart(ss, "room.*.temp", parse_graph_span("year", now=NOW), now=NOW)
    assert chart.tier == 3600 and chart.step == 21600
    assert [ln.label for ln in chart.panels[0].lines] == [f"room.{k}.temp" for k in range(5)]
    assert chart.panels[0].summary.count == len(t) * 5
    png = render(chart).png
    assert Image.open(io.BytesIO(png)).size[0] == 1000
    store.close()


# --- charts of the sample service ---------------------------------------------------------------------


def test_client_chart_is_the_metpx_set(sample):
    span = parse_graph_span("24h", now=NOW)
    chart = client_chart(sample.series, ["tx/amis"], span, now=NOW)
    assert [p.key for p in chart.panels] == ["latency", "bytes", "errors", "files", "over_max", "over_max_pct"]
    latency = chart.panels[0]
    assert latency.summary.max == pytest.approx(600.0, rel=0.02)  # the spike, from the merged sketch's max
    assert latency.summary.median is not None and latency.summary.p95 is not None
    assert latency.summary.median < latency.summary.p95 < latency.summary.max
    files = chart.panels[3].lines[-1].values
    gap = (chart.times >= GAP[0]) & (chart.times + chart.step <= GAP[1])
    assert np.isnan(files[gap]).all()  # two hours with no line in the logs: a gap, not zeros
    assert np.nanmin(files) >= 0 and not np.isnan(files[~gap][10:-10]).any()
    errors = chart.panels[2].lines[-1].values
    assert (errors[~np.isnan(errors)] >= 0).all() and np.nansum(errors) > 0
    pct = chart.panels[5].lines[-1].values
    assert np.nanmax(pct) <= 100 and np.nanmax(pct) > 0
    assert "tx amis" in chart.title and "24 h to 2024-05-01 12:30 UTC" in chart.title


def test_several_clients_one_line_each(sample):
    chart = client_chart(sample.series, ["tx/amis", "cmc"], parse_graph_span("24h", now=NOW), now=NOW)
    assert [ln.label for ln in chart.panels[3].lines] == ["tx amis", "rx cmc"]
    assert all(ln.summary is not None for ln in chart.panels[3].lines)
    with pytest.raises(NotFound):
        client_chart(sample.series, ["tx/nobody"], parse_graph_span("24h", now=NOW), now=NOW)


def test_year_of_a_client_reads_the_hourly_tier(sample):
    chart = client_chart(sample.series, ["rx/cmc"], parse_graph_span("year", now=NOW), now=NOW)
    assert chart.tier == 3600 and chart.step == 21600
    assert np.isfinite(chart.panels[3].lines[-1].values).sum() > 1000


def test_host_chart_groups_metrics_into_panels(sample):
    chart = host_chart(sample.series, "web1", parse_graph_span("24h", now=NOW), now=NOW, hosts=["web1", "db2"])
    keys = [p.key for p in chart.panels]
    assert keys == ["cpu", "load", "mem", "disk", "net", "procs"]
    load = chart.panels[1]
    assert [ln.label for ln in load.lines] == ["1m", "5m", "15m"] and load.summary_of == "1m"
    cpu = chart.panels[0]
    assert [ln.label for ln in cpu.lines] == ["core 0", "core 1", "total"] and cpu.summary_of is None
    assert 0 <= cpu.summary.min <= cpu.summary.median <= cpu.summary.max <= 100
    with pytest.raises(NotFound):
        host_chart(sample.series, "nohost", parse_graph_span("24h", now=NOW), now=NOW)


def test_station_chart_each_entry_then_steps(sample):
    day = station_chart(sample.store, "GAUGE2", parse_graph_span("24h", now=NOW), now=NOW)
    assert day.step == 0  # few entries: each is a point
    assert [p.key for p in day.panels] == ["lateness", "param:STAGE", "param:TEMP"]
    late = day.panels[0]
    assert 180 <= late.summary.min and late.summary.max <= 1180  # read 3 to 20 minutes after each hour
    stage = day.panels[1].lines[0].values
    assert np.isnan(stage).sum() == 1  # one break: the five missing hours
    assert day.panels[0].bands, "the known gap is shaded"
    a, b = day.panels[0].bands[0]
    assert b - a >= 4 * 3600
    many = station_chart(sample.store, "GAUGE1", parse_graph_span("24h", now=NOW), now=NOW, max_points=10)
    assert many.step == 10800  # past max_points: whole steps of at least span / max_points and twice the interval
    assert [p.key for p in many.panels][:3] == ["entries", "lateness", "arrivals"]
    assert np.nansum(many.panels[0].lines[0].values) == 24
    with pytest.raises(NotFound):
        station_chart(sample.store, "NOPE", parse_graph_span("24h", now=NOW), now=NOW)


def test_draw_chart_for_every_kind(sample):
    span = parse_graph_span("7d", now=NOW)
    for what in ({"kind": "series", "series": "host.db2.cpu.total"}, {"kind": "client", "clients": ["amis"]},
                 {"kind": "host", "host": "db2"}, {"kind": "station", "station": "GAUGE3"}):
        png = draw_chart(sample.store, sample.series, span=span, now=NOW, width=600, **what)
        assert Image.open(io.BytesIO(png)).size[0] == 600
    with pytest.raises(BadRequest):
        build_chart(sample.store, sample.series, kind="client", span=span, now=NOW)
