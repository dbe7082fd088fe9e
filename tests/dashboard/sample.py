"""Sample data for the dashboard tests: a Service on tmp_path with a settable clock, schedules,
stations fed through the real ingest path (EDL files read at chosen times, so lateness is real),
MetPX transfer series for three clients (two days by the minute, a year by the hour, a spike
and a two-hour gap) and pushed metrics of two hosts."""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from telmon.config import Config
from telmon.service import Service
from telmon.tail.names import series_name
from telmon.timeutil import utc_datetime
from tests.support import serve_app

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc).timestamp()
HOUR = 3600.0
DAY = 86400.0
SPIKE_AT = NOW - 6 * HOUR  # tx/amis: one file 600 s late here
GAP = (NOW - 14 * HOUR, NOW - 12 * HOUR)  # tx/amis: nothing at all in the logs
CLIENTS = (("tx", "amis"), ("tx", "wxo-ice"), ("rx", "cmc"))
HOSTS = ("web1", "db2")
REGISTRY = """id,name,lat,lon,interval,first,window
GAUGE1,Bow River at Calgary,51.05,-114.07,1h,0,600
GAUGE2,Red River at Winnipeg,49.90,-97.14,1h,0,600
GAUGE3,Fraser River at Hope,49.38,-121.44,1h,0,600
"""


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def edl(code: str, device: str, times: list[float], values: list[float]) -> bytes:
    lines = [f"//STATION {code}", f"//DEVICE {device}", "//OVERWRITE true"]
    lines += [f'"{utc_datetime(t).strftime("%Y/%m/%d %H:%M")}", {v:.3f}' for t, v in zip(times, values)]
    return ("\n".join(lines) + "\n").encode()


def build(tmp: Path, *, stations: bool = True, transfers: bool = True, hosts: bool = True) -> Service:
    """The sample service at NOW (its clock stays there once built)."""
    clock = Clock(NOW)
    service = Service(Config(values={**Config().values, "data_dir": str(tmp / "data")}), now=clock)
    from telmon.schedule import query as sq
    from telmon.schedule.service import install

    install(service)
    if stations:
        reg = tmp / "stations.csv"
        reg.write_text(REGISTRY)
        sq.import_file(service.store, reg, now=NOW)
        _stations(service, clock, tmp / "inbox")
    if transfers:
        _transfers(service)
    if hosts:
        _hosts(service)
    clock.t = NOW
    return service


def _stations(service: Service, clock: Clock, inbox: Path) -> None:
    """Two days of hourly reports, each file read 3-20 minutes after its hour; GAUGE2 misses
    five hours; GAUGE3 stopped reporting 8 hours ago."""
    inbox.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    top = NOW - NOW % HOUR
    hours = [top - k * HOUR for k in range(48)][::-1]
    plan = {
        "GAUGE1": hours,
        "GAUGE2": [t for t in hours if not (top - 20 * HOUR <= t < top - 15 * HOUR)],
        "GAUGE3": [t for t in hours if t <= top - 8 * HOUR],
    }
    n = 0
    for t in hours:
        items = []
        for code, times in plan.items():
            if t not in times:
                continue
            stage = 2.0 + 0.5 * np.sin(t / 36000) + (0.03 * rng.standard_normal())
            temp = 12 + 6 * np.sin((t % DAY) / DAY * 2 * np.pi)
            for device, value in (("STAGE", stage), ("TEMP", temp)):
                n += 1
                p = inbox / f"{code}-{device}-{n}.edl"
                p.write_bytes(edl(code, device, [t], [float(value)]))
                items.append(p)
        clock.t = t + 180 + float(rng.integers(0, 1000))  # read 3 to 20 minutes after the hour
        # the ingestor's own parse and the store's record path; only the arrival time (the
        # file's ctime, which a test cannot set) is the sample clock's
        records = []
        for p in items:
            rec = service.ingestor.parse(p, "rsync", p.read_bytes(), p.stat())
            rec.received_at = clock.t
            records.append(rec)
        results = service.store.record_files(records, now=clock.t)
        assert all(r.status == "ok" for r in results), [(r.path, r.reasons) for r in results]


def _transfers(service: Service) -> None:
    rng = np.random.default_rng(11)
    samples: list[tuple[str, Any, Any]] = []
    for direction, client in CLIENTS:
        machine = "pds5"
        # two days of files, about 4 a minute
        t = np.sort(rng.uniform(NOW - 2 * DAY, NOW, 11520))
        if client == "amis":
            t = t[(t < GAP[0]) | (t >= GAP[1])]
        lat = rng.gamma(2.0, 0.8, len(t))
        incident = (t >= NOW - 3 * HOUR) & (t < NOW - 3 * HOUR + 1200)
        lat[incident] *= 10  # a 20-minute slowdown: files over the 15 s maximum
        if client == "amis":
            lat[np.argmin(np.abs(t - SPIKE_AT))] = 600.0
        # a year before that, one summary file an hour (keeps the year view honest and cheap)
        old = np.arange(NOW - 365 * DAY, NOW - 2 * DAY, HOUR) + 7
        old_lat = 1.5 + 0.5 * np.sin(old / (30 * DAY)) + rng.gamma(1.0, 0.2, len(old))
        sa = rng.random(len(t)) < 0.7
        sa[lat > 100] = True  # the spike is an SA bulletin
        for product, pick in (("SA", sa), ("FT", ~sa)):
            times, lats = np.concatenate([old, t[pick]]), np.concatenate([old_lat, lat[pick]])
            samples.append((series_name(direction, client, machine, product, "latency"), times, lats))
            minutes = np.unique(times // 60 * 60) + 0.001
            samples.append((series_name(direction, client, machine, product, "bytes"), minutes,
                            rng.integers(2_000, 60_000, len(minutes)).astype(float)))
            over, n_over = np.unique(times[lats > 15] // 60 * 60, return_counts=True)
            samples.append((series_name(direction, client, machine, product, "over_max"), over + 0.001,
                            n_over.astype(float)))
            errs = minutes[rng.random(len(minutes)) < 0.02]
            samples.append((series_name(direction, client, machine, product, "errors"), errs, np.ones(len(errs))))
    result = service.series.write(samples, source="test", now=NOW)
    assert result.rejected == 0, result.reasons


def _hosts(service: Service) -> None:
    rng = np.random.default_rng(3)
    recent = np.arange(NOW - 2 * DAY, NOW, 60.0)
    old = np.arange(NOW - 200 * DAY, NOW - 2 * DAY, HOUR)
    t = np.concatenate([old, recent])
    daily = np.sin((t % DAY) / DAY * 2 * np.pi)
    samples: list[tuple[str, Any, Any]] = []
    for i, host in enumerate(HOSTS):
        base = 20 + 15 * i
        cpu = np.clip(base + 12 * daily + rng.normal(0, 4, len(t)), 0, 100)
        series = {
            "cpu.total": cpu, "cpu.core.0": np.clip(cpu + rng.normal(0, 6, len(t)), 0, 100),
            "cpu.core.1": np.clip(cpu + rng.normal(0, 6, len(t)), 0, 100),
            "load.1m": cpu / 25, "load.5m": cpu / 27, "load.15m": cpu / 30,
            "mem.percent": 55 + 10 * i + 3 * daily, "swap.percent": np.full(len(t), 2.0 + i),
            "disk.root.percent": np.linspace(40 + 30 * i, 48 + 40 * i, len(t)),
            "disk.var_lib.percent": np.linspace(20, 25, len(t)),
            "net.eth0.bytes_sent_per_s": 2e5 * (1.2 + daily) + rng.normal(0, 1e4, len(t)),
            "net.eth0.bytes_recv_per_s": 5e5 * (1.2 + daily) + rng.normal(0, 2e4, len(t)),
            "procs.count": np.round(180 + 20 * daily),
        }
        for label, values in series.items():
            samples.append((f"host.{host}.{label}", t, np.asarray(values, np.float64)))
    result = service.series.write(samples, source="test", now=NOW)
    assert result.rejected == 0, result.reasons


def app_for(service: Service) -> Any:
    """The app with the routers this issue's pages use (until telmon/api/app.py includes them)."""
    from telmon.api.app import create_app
    from telmon.api.dashboard import router as dashboard
    from telmon.api.stations_pages import router as stations_pages
    from telmon.api.transfers import router as transfers

    app = create_app(service)
    paths = {getattr(r, "path", None) for r in app.routes}
    for router, probe in ((stations_pages, "/map"), (transfers, "/api/v1/transfers"), (dashboard, "/graph.png")):
        if probe not in paths:
            app.include_router(router)
    return app


def serve(service: Service) -> contextlib.AbstractContextManager[str]:
    """The real app under uvicorn on a free localhost port, in a thread; yields its base URL."""
    return serve_app(app_for(service), "uvicorn-dashboard-test")
