"""The dashboard's HTTP side in-process: /graph.png and its caching headers, every page and its
JSON on the sample data, the empty state of a fresh install, and the station list with 10,000
stations (pagination, search, status filter)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from telmon.service import Service
from tests.dashboard.sample import NOW, app_for

PAGES = ("/", "/stations", "/stations/GAUGE1", "/clients", "/clients/tx/amis", "/hosts", "/hosts/web1", "/graphs",
         "/graphs/day", "/graphs/week", "/graphs/month", "/graphs/year")


@pytest.fixture(scope="module")
def client(sample: Service):
    with TestClient(app_for(sample)) as c:
        yield c


def test_graph_png_with_etag_and_cache_control(client: TestClient, sample: Service):
    r = client.get("/graph.png", params={"client": "tx/amis", "span": "24h", "width": 640})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size[0] == 640
    etag = r.headers["etag"]
    assert etag.startswith('"') and "max-age=60" in r.headers["cache-control"]
    again = client.get("/graph.png", params={"client": "tx/amis", "span": "24h", "width": 640},
                       headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag and not again.content
    # a past span is kept longer by caches
    old = client.get("/graph.png", params={"station": "GAUGE1", "start": "2024-04-30", "end": "2024-05-01"})
    assert old.status_code == 200 and "max-age=600" in old.headers["cache-control"]
    # new data: a new image and a new ETag
    sample.series.write([("transfers/tx/amis/pds5/SA/latency", [NOW - 90], [42.0])], now=NOW)
    fresh = client.get("/graph.png", params={"client": "tx/amis", "span": "24h", "width": 640},
                       headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag


@pytest.mark.parametrize("params", [
    {"series": "host.web1.cpu.total", "span": "week"},
    {"series": "host.*.mem.percent", "span": "month", "stat": "max"},
    {"client": "amis,wxo-ice", "span": "day"},
    {"host": "db2", "span": "year", "width": 500, "height": 80},
    {"station": "GAUGE2", "span": "7d", "param": "TEMP"},
])
def test_graph_png_kinds(client: TestClient, params: dict):
    r = client.get("/graph.png", params=params)
    assert r.status_code == 200, r.text
    Image.open(io.BytesIO(r.content)).load()


@pytest.mark.parametrize("params, status, word", [
    ({}, 400, "exactly one"),
    ({"client": "tx/amis", "host": "web1"}, 400, "exactly one"),
    ({"client": "tx/nobody"}, 404, "nobody"),
    ({"station": "NOPE"}, 404, "NOPE"),
    ({"series": "no.such.series"}, 404, "no.such.series"),
    ({"host": "web1", "span": "fortnight"}, 400, "span"),
    ({"series": "host.web1.cpu.total", "stat": "bogus"}, 400, "stat"),
])
def test_graph_png_errors_are_json(client: TestClient, params: dict, status: int, word: str):
    r = client.get("/graph.png", params=params)
    assert r.status_code == status and word in r.json()["error"], r.text


@pytest.mark.parametrize("path", PAGES)
def test_pages_render(client: TestClient, path: str):
    r = client.get(path)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    html = r.text
    assert '<a href="/map">Map</a>' in html  # the map is linked from the header
    assert "/static/vendor/uplot/uPlot.iife.min.js" in html and "//cdn" not in html and "https://" not in html


def test_page_data(client: TestClient):
    o = client.get("/api/v1/dashboard/overview").json()
    assert o["stations_by_status"]["on_time"] >= 1 and o["arrivals_last_hour"] >= 2
    assert o["transfers_last_hour"]["files"] > 0 and o["transfers_last_hour"]["latency_p95"] > 0
    assert {h["host"] for h in o["hosts"]} == {"web1", "db2"} and o["hosts"][0]["cpu"] is not None
    listed = client.get("/api/v1/dashboard/stations", params={"sort": "recent"}).json()
    assert [s["station"] for s in listed["stations"]][:2] == ["GAUGE1", "GAUGE2"]  # GAUGE3 went quiet 8 h ago
    strip = {s["station"]: s["last_24h"] for s in listed["stations"]}
    assert len(strip["GAUGE1"]) == 24 and sum(strip["GAUGE1"]) == 48  # two files an hour, every hour
    assert strip["GAUGE3"][-7:] == [0] * 7
    st = client.get("/api/v1/dashboard/stations/GAUGE2", params={"span": "day"}).json()
    assert st["station"]["station"] == "GAUGE2" and st["missing"] == 5 and len(st["recent_entries"]) == 20
    assert st["chart"]["panels"][0]["key"] == "lateness" and None in st["chart"]["panels"][1]["lines"][0]["values"]
    week = client.get("/api/v1/dashboard/stations/GAUGE2", params={"span": "week"}).json()
    assert week["chart"]["start"] == "2024-04-24T12:30:00Z"
    zoom = client.get("/api/v1/dashboard/clients/tx/amis", params={"start": NOW - 3600, "end": NOW}).json()
    assert zoom["chart"]["step"] == 60 and len(zoom["chart"]["t"]) == 60
    assert zoom["machines"][0]["machine"] == "pds5" and {p["product"] for p in zoom["products"]} == {"SA", "FT"}
    clients = client.get("/api/v1/dashboard/clients", params={"span": "day"}).json()["clients"]
    assert [(c["direction"], c["client"]) for c in clients] == [("rx", "cmc"), ("tx", "amis"), ("tx", "wxo-ice")]
    assert all(c["files"] > 5000 and c["latency_median"] < c["latency_p95"] for c in clients)
    host = client.get("/api/v1/dashboard/hosts/web1", params={"span": "week"}).json()
    assert host["chart"]["step"] == 600 and any(m["metric"] == "total" for m in host["latest"])
    per = client.get("/api/v1/dashboard/periods/week", params={"kind": "stations"}).json()
    assert per["total"] == 3 and len(per["periods"]) == 5 and per["subjects"][0]["param"] == "station"
    assert client.get("/api/v1/dashboard/periods/day", params={"kind": "people"}).status_code == 400
    assert client.get("/graphs/decade").status_code == 404


def test_fresh_install_answers_every_page_with_its_empty_state(empty_service: Service):
    with TestClient(app_for(empty_service)) as c:
        for path in PAGES:  # the shells; a subject's page then says it is not found (its JSON is a 404)
            assert c.get(path).status_code == 200
        o = c.get("/api/v1/dashboard/overview").json()
        assert o["counts"]["files"] == 0 and o["transfers_last_hour"] is None and o["hosts_total"] == 0
        assert c.get("/api/v1/dashboard/stations").json()["total"] == 0
        assert c.get("/api/v1/dashboard/clients").json()["clients"] == []
        assert c.get("/api/v1/dashboard/hosts").json()["hosts"] == []
        assert c.get("/api/v1/dashboard/periods/day").json()["subjects"] == []
        assert c.get("/api/v1/dashboard/stations/NOPE").status_code == 404
        assert c.get("/graph.png", params={"client": "amis"}).status_code == 404


def test_ten_thousand_stations_page_search_and_filter(tmp_path: Path):
    from telmon.config import Config
    from telmon.schedule import query as sq
    from telmon.schedule.service import install

    service = Service(Config(values={**Config().values, "data_dir": str(tmp_path / "data")}), now=lambda: NOW)
    try:
        install(service)
        rows = ["id,name,lat,lon,interval,first,window"]
        rows += [f"S{i:05d},Gauge {i},{30 + i % 20},{-100 + i % 40},1h,0,300" for i in range(10_000)]
        (tmp_path / "reg.csv").write_text("\n".join(rows) + "\n")
        sq.import_file(service.store, tmp_path / "reg.csv", now=NOW)
        with TestClient(app_for(service)) as c:
            c.get("/api/v1/dashboard/stations")  # warm the status cache as a poll would
            t0 = time.perf_counter()
            page = c.get("/api/v1/dashboard/stations", params={"offset": 9_950}).json()
            took = time.perf_counter() - t0
            assert page["total"] == 10_000 and len(page["stations"]) == 50
            assert page["stations"][-1]["station"] == "S09999" and page["statuses"]["never"] == 10_000
            assert took < 1.0, took
            found = c.get("/api/v1/dashboard/stations", params={"search": "gauge 123"}).json()
            assert found["total"] == 11 and found["stations"][0]["station"] == "S00123"
            never = c.get("/api/v1/dashboard/stations", params={"status": "never", "limit": 10, "offset": 20}).json()
            assert never["total"] == 10_000 and [s["station"] for s in never["stations"]][0] == "S00020"
            assert c.get("/api/v1/dashboard/stations", params={"status": "late"}).json()["total"] == 0
            assert c.get("/api/v1/dashboard/stations", params={"sort": "sideways"}).status_code == 400
            t0 = time.perf_counter()
            assert c.get("/api/v1/dashboard/overview").json()["stations_total"] == 10_000
            assert time.perf_counter() - t0 < 2.0
    finally:
        service.close()


def test_station_page_server_time(client: TestClient):
    """The station page's HTML and its data, timed in-process (the benchmark reports it too)."""
    client.get("/api/v1/dashboard/stations/GAUGE1")
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        assert client.get("/stations/GAUGE1").status_code == 200
        assert client.get("/api/v1/dashboard/stations/GAUGE1", params={"span": "day"}).status_code == 200
        best = min(best, time.perf_counter() - t0)
    assert best < 0.5, best
