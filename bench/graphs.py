"""Benchmark: PNG graphs and the dashboard's station page.

Reports, in one run, each against a baseline measured in the same run:

  * a 1-year graph of 5 series: telmon (the 1-hour rollup tier, 6-hour steps, min-max band,
    Agg) against a plain matplotlib script plotting the raw samples (one a minute, kept raw
    for the comparison) read from the same store -- target < 0.5 s;
  * `telmon graph --all --span 24h` for 150 MetPX clients (the six-panel MetPX set each,
    worker processes) against a plain script: raw samples of each client read, binned per
    minute with numpy and drawn with pyplot, one client after another;
  * the station page: server time for its HTML and its data (in-process ASGI, no network)
    for a station with a year of hourly entries, per span -- target < 200 ms.

    python bench/graphs.py [--clients 150] [--quick] [--json bench/out/graphs.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telmon.rollup.store import SeriesStore  # noqa: E402
from telmon.store.sqlite import SQLiteStore  # noqa: E402
from telmon.tail.names import series_name  # noqa: E402

NOW = 1_714_566_600.0  # 2024-05-01T12:30:00Z
DAY = 86400.0
YEAR = 365 * DAY


def timed(fn, repeat: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return {"best_s": round(min(runs), 4), "median_s": round(statistics.median(runs), 4), "runs": len(runs)}


# --- 1. a year of 5 series -------------------------------------------------------------------------


def year_of_five(folder: Path, repeat: int, quick: bool) -> dict[str, object]:
    store = SQLiteStore(folder / "year.db")
    ss = SeriesStore(store)
    # raw kept for the year too, so the baseline has raw samples to read
    ss.set_policy("bench.*", "raw:400d,1m:14d,1h:2y,1d:10y")
    step = 300.0 if quick else 60.0
    t = np.arange(NOW - YEAR, NOW, step)
    rng = np.random.default_rng(5)
    names = [f"bench.room{k}.temp" for k in range(5)]
    t0 = time.perf_counter()
    for k, name in enumerate(names):
        v = np.round(20 + k + 5 * np.sin(t / YEAR * 2 * np.pi) + 3 * np.sin(t / DAY * 2 * np.pi)
                     + rng.normal(0, 0.5, len(t)), 2)
        for a in range(0, len(t), 100_000):
            ss.write([(name, t[a:a + 100_000], v[a:a + 100_000])], now=NOW)
    write_s = time.perf_counter() - t0

    from telmon.graphs.model import parse_graph_span
    from telmon.graphs.render import render
    from telmon.graphs.sources import series_chart

    span = parse_graph_span("year", now=NOW)
    render(series_chart(ss, "bench.*.temp", span, now=NOW))  # warm: matplotlib's import and font cache
    chart = series_chart(ss, "bench.*.temp", span, now=NOW)
    read = timed(lambda: series_chart(ss, "bench.*.temp", span, now=NOW), repeat)
    draw = timed(lambda: render(chart), repeat)
    both = timed(lambda: render(series_chart(ss, "bench.*.temp", span, now=NOW)), repeat)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def plain() -> None:
        fig, ax = plt.subplots(figsize=(10, 3))
        for name in names:
            ts, vs = ss.samples(name, span.start, span.end)
            ax.plot(ts / DAY, vs, linewidth=0.8)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)

    baseline = timed(plain, max(1, repeat // 2))
    store.close()
    return {"series": 5, "samples_per_series": len(t), "sample_step_s": step, "write_s": round(write_s, 2),
            "tier_read": chart.tier, "points_per_series": len(chart.times), "step_s": chart.step,
            "telmon_read": read, "telmon_render": draw, "telmon_total": both, "plain_matplotlib_raw": baseline,
            "speedup": round(baseline["best_s"] / both["best_s"], 1)}


# --- 2. --all for 150 clients ----------------------------------------------------------------------------


def all_clients(folder: Path, clients: int, repeat: int, files_per_day: int) -> dict[str, object]:
    store = SQLiteStore(folder / "clients.db")
    ss = SeriesStore(store)
    rng = np.random.default_rng(9)
    t0 = time.perf_counter()
    names = []
    for c in range(clients):
        client = f"client{c:03d}"
        t = np.sort(rng.uniform(NOW - DAY, NOW, files_per_day))
        lat = rng.gamma(2.0, 1.0, len(t))
        minutes = np.unique(t // 60 * 60) + 0.001
        batch = [
            (series_name("tx", client, "pds5", "SA", "latency"), t, lat),
            (series_name("tx", client, "pds5", "SA", "bytes"), minutes, rng.integers(1e3, 6e4, len(minutes)).astype(float)),
            (series_name("tx", client, "pds5", "SA", "errors"), minutes[::40], np.ones(len(minutes[::40]))),
            (series_name("tx", client, "pds5", "SA", "over_max"), minutes[::25], np.ones(len(minutes[::25]))),
        ]
        ss.write(batch, now=NOW)
        names.append(client)
    write_s = time.perf_counter() - t0
    url = store.url
    store.close()

    from telmon.graphs import batch
    from telmon.graphs.model import parse_graph_span

    st = SQLiteStore(folder / "clients.db")
    items = batch.targets(st, SeriesStore(st), ["clients"])
    st.close()
    span = parse_graph_span("24h", now=NOW)
    out: dict[str, object] = {"clients": clients, "files_per_client_per_day": files_per_day,
                              "write_s": round(write_s, 2), "cores": os.cpu_count()}
    for jobs in sorted({1, batch.default_jobs(), min(2, os.cpu_count() or 1)}):
        res = None

        def run() -> None:
            nonlocal res
            res = batch.draw_all(url, items, folder / f"out-{jobs}", span, now=NOW, jobs=jobs)

        out[f"telmon_jobs_{jobs}"] = timed(run, repeat)
        assert res is not None and res.drawn == clients and not res.failed, res

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def plain() -> None:
        st2 = SQLiteStore(folder / "clients.db")
        ss2 = SeriesStore(st2)
        edges = np.arange(span.start, span.end + 60, 60.0)
        (folder / "plain").mkdir(exist_ok=True)
        for client in names:
            fig, axes = plt.subplots(6, 1, figsize=(10, 10), sharex=True)
            lt, lv = ss2.samples(series_name("tx", client, "pds5", "SA", "latency"), span.start, span.end)
            files, _ = np.histogram(lt, edges)
            lat_sum, _ = np.histogram(lt, edges, weights=lv)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = lat_sum / files
            sums = {}
            for metric in ("bytes", "errors", "over_max"):
                mt, mv = ss2.samples(series_name("tx", client, "pds5", "SA", metric), span.start, span.end)
                sums[metric], _ = np.histogram(mt, edges, weights=mv)
            with np.errstate(invalid="ignore", divide="ignore"):
                pct = 100 * sums["over_max"] / files
            x = edges[:-1] / DAY
            for ax, (title, y) in zip(axes, (("latency", mean), ("bytes", sums["bytes"]), ("errors", sums["errors"]),
                                             ("files", files), ("over max", sums["over_max"]), ("over max %", pct))):
                ax.plot(x, y, linewidth=0.8)
                ax.set_title(f"{title}  MAX {np.nanmax(y):.3g} MEAN {np.nanmean(y):.3g} MIN {np.nanmin(y):.3g}",
                             fontsize=8, loc="left")
            fig.savefig(folder / "plain" / f"{client}.png")
            plt.close(fig)
        st2.close()

    out["plain_matplotlib_raw_1_process"] = timed(plain, 1)
    return out


# --- 3. the station page -------------------------------------------------------------------------------


def station_page(folder: Path, repeat: int) -> dict[str, object]:
    import warnings

    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

    from telmon.config import Config
    from telmon.service import Service

    service = Service(Config(values={**Config().values, "data_dir": str(folder / "st")}), now=lambda: NOW)
    from telmon.schedule.service import install

    install(service)
    # a year of hourly reports with two parameters, one file a day, each read 5 minutes late
    store = service.store
    day0 = NOW - YEAR
    records = []
    for d in range(365):
        start = day0 + d * DAY
        lines = ["//STATION BENCH1", "//DEVICE STAGE", "//OVERWRITE true"]
        from telmon.timeutil import utc_datetime

        lines += [f'"{utc_datetime(start + h * 3600).strftime("%Y/%m/%d %H:%M")}", {2 + np.sin((start + h * 3600) / 86400):.3f}'
                  for h in range(24)]
        p = folder / f"bench1-{d}.edl"
        p.write_text("\n".join(lines) + "\n")
        rec = service.ingestor.parse(p, "rsync", p.read_bytes(), p.stat())
        rec.received_at = start + 24 * 3600 + 300
        records.append(rec)
    for a in range(0, len(records), 50):
        store.record_files(records[a:a + 50], now=NOW)

    out: dict[str, object] = {"entries": 365 * 24}
    with TestClient(_app(service)) as client:
        for span in ("day", "week", "month", "year"):
            url = f"/api/v1/dashboard/stations/BENCH1?span={span}"
            client.get(url)

            def page(url: str = url) -> None:
                assert client.get("/stations/BENCH1").status_code == 200
                assert client.get(url).status_code == 200
                assert client.get("/api/v1/stations/BENCH1/schedule").status_code == 200

            out[span] = timed(page, repeat)
        out["html_only"] = timed(lambda: client.get("/stations/BENCH1"), repeat)
    service.close()
    return out


def _app(service: object) -> object:
    """The app with the schedule and dashboard routers (until telmon/api/app.py includes them)."""
    from telmon.api.app import create_app
    from telmon.api.dashboard import router as dashboard
    from telmon.api.stations_pages import router as stations_pages

    app = create_app(service)  # type: ignore[arg-type]
    paths = {getattr(r, "path", None) for r in app.routes}
    for router, probe in ((stations_pages, "/map"), (dashboard, "/graph.png")):
        if probe not in paths:
            app.include_router(router)
    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=150)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    ap.add_argument("--json", default=str(Path(__file__).resolve().parent / "out" / "graphs.json"))
    args = ap.parse_args()
    clients = 10 if args.quick else args.clients
    repeat = 2 if args.quick else args.repeat
    result: dict[str, object] = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                             "load_before": os.getloadavg()}}
    with tempfile.TemporaryDirectory(prefix="telmon-bench-graphs-") as tmp:
        folder = Path(tmp)
        y = year_of_five(folder, repeat, args.quick)
        result["year_of_5_series"] = y
        print(f"1-year graph of 5 series ({y['samples_per_series']:,} samples each, {y['points_per_series']} points "
              f"from the {y['tier_read']} s tier): telmon {y['telmon_total']['best_s']:.3f} s "
              f"(read {y['telmon_read']['best_s']:.3f} + draw {y['telmon_render']['best_s']:.3f}); "
              f"plain matplotlib on raw samples {y['plain_matplotlib_raw']['best_s']:.2f} s  -> x{y['speedup']}")
        a = all_clients(folder, clients, 1, 2880 if args.quick else 28_800)
        result["all_clients_24h"] = a
        for k, v in a.items():
            if k.startswith(("telmon_jobs", "plain")):
                print(f"--all, {clients} clients x {a['files_per_client_per_day']:,} files, 24 h: {k}: {v['best_s']:.1f} s "
                      f"({v['best_s'] / clients * 1000:.0f} ms a graph)")
        s = station_page(folder, repeat)
        result["station_page"] = s
        for span in ("day", "week", "month", "year"):
            print(f"station page ({s['entries']:,} entries), span {span}: HTML + data + schedule "
                  f"{s[span]['best_s'] * 1000:.0f} ms best, {s[span]['median_s'] * 1000:.0f} ms median")
    result["machine"]["load_after"] = os.getloadavg()  # type: ignore[index]
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"figures: {args.json}")


if __name__ == "__main__":
    main()
