"""The schedule routes through the real app (in-process client) on the sample network."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.schedule.network import EXPECTED, NOW, app_for, build


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    service = build(tmp_path_factory.mktemp("net"))
    with TestClient(app_for(service)) as c:
        yield c
    service.close()


def test_map_json_has_every_located_station_with_its_status(client):
    d = client.get("/api/v1/map").json()
    assert {s["station"]: s["status"] for s in d["stations"]} == EXPECTED
    assert d["unlocated"] == 1 and d["feeds"] == ["GOES", "rsync"]
    assert d["counts"]["silent"] == 2 and d["noaa"] == {"A": 4, "D": 2, "U": 2}
    only = client.get("/api/v1/map", params={"feed": "GOES"}).json()
    assert [s["station"] for s in only["stations"]] == ["CE344292"]
    assert client.get("/api/v1/map", params={"status": "late,missing"}).json()["count"] == 2
    assert client.get("/api/v1/map", params={"status": "purple"}).status_code == 400


def test_station_page_data(client):
    d = client.get("/api/v1/stations/MISS1/schedule").json()
    assert d["status"] == "missing" and d["noaa_status"] == "A"
    day = d["completeness"]["24h"]
    assert day["expected"] == 24 and day["missing"] == 3 and day["missing_runs"][0]["open"] is True
    assert d["next_expected"] == {"start": "2024-05-01T13:00:00Z", "end": "2024-05-01T13:05:00Z"}
    assert d["recent_entries"][0]["observed_at"] == "2024-05-01T09:00:00Z"
    assert client.get("/api/v1/stations/NOPE/schedule").status_code == 404
    page = client.get("/station/MISS1")
    assert page.status_code == 200 and 'data-station="MISS1"' in page.text
    assert "leaflet.js" in client.get("/map").text


def test_questions(client):
    q = client.get("/api/v1/schedule/completeness", params={"station": "ONTIME1,LATE1", "start": NOW - 86400}).json()
    got = {s["station"]: (s["expected"], s["on_time"], s["late"]) for s in q["stations"]}
    assert got == {"LATE1": (24, 23, 1), "ONTIME1": (24, 24, 0)}
    m = client.get("/api/v1/schedule/missing", params={"start": NOW - 86400}).json()
    # silent stations miss every slot too (their open trailing run)
    assert {s["station"]: s["missing"] for s in m["stations"]} == {"MISS1": 3, "SILENT1": 24, "CE344292": 24}
    s = client.get("/api/v1/schedule/silent").json()
    assert {r["station"] for r in s["stations"]} == {"SILENT1", "CE344292", "NEVER1", "NOLOC1"}
    assert client.get("/api/v1/schedule/completeness").status_code == 400
    gaps = client.get("/api/v1/gaps", params={"start": NOW - 86400, "end": NOW}).json()
    # the spine's question 2, in slots; UNSCHED1 has no schedule and no gap in its entries
    assert [g["station"] for g in gaps["stations"]] == ["CE344292", "MISS1", "SILENT1"]


def test_edit_and_import_over_http(client, tmp_path: Path):
    r = client.patch("/api/v1/stations/UNSCHED1", json={"interval": "1h", "window": 300, "first": 0})
    assert r.status_code == 200 and r.json()["schedule"]["source"] == "manual"
    assert client.get("/api/v1/stations/UNSCHED1/schedule").json()["status"] == "on_time"
    bad = client.patch("/api/v1/stations/UNSCHED1", json={"window": "2h"})
    assert bad.status_code == 400 and bad.json()["kind"] == "BadRequest"
    body = "id,name,lat,lon,interval,first,window\nNEW1,New,10,20,900,0,60\nNEW2,Bad,10,20,900,0,9999\n"
    r = client.post("/api/v1/stations/import", params={"name": "new.csv"}, content=body)
    assert r.status_code == 200
    out = r.json()
    assert out["created"] == 1 and out["problems"] == ["new.csv:3: window (9999 s) must be >= 0 and shorter than "
                                                      "the interval (900 s)"]
    assert client.post("/api/v1/stations/import", content=b"").status_code == 400
