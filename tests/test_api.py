"""The HTTP API through the real FastAPI app (in-process ASGI client), on a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from telmon.api.app import create_app
from telmon.config import Config
from telmon.model import Entry, Problem, Unit
from telmon.service import Service
from telmon.store.base import FileRecord, StationInfo

H = 3600.0
T0 = 1_519_005_600.0  # 2018-02-19T02:00:00Z


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    cfg = Config()
    cfg.set("data_dir", str(tmp_path))
    svc = Service(cfg)
    yield svc
    svc.close()


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as c:
        yield c


def add(service: Service, path: str, station: str, hours: list[int], received: float) -> None:
    unit = Unit(station, [Entry(T0 + h * H, {"stage": float(h)}) for h in hours])
    service.store.record_files([FileRecord(path, "GOES", 10, 1, path, received, "edl", [unit])], now=received)


@pytest.fixture
def loaded(service: Service) -> Service:
    service.store.upsert_stations([StationInfo("QUIET", name="never reports")], now=T0)
    add(service, "/in/a", "S1", [0, 1, 2, 5, 6], received=T0 + 6 * H + 60)
    add(service, "/in/b", "S2", [0, 1, 2, 3, 4, 5, 6], received=T0 + 6 * H + 120)
    add(service, "/in/c", "S2", [7], received=T0 + 7 * H + 120)
    service.store.record_files(
        [FileRecord("/in/junk", "GOES", 3, 1, "junk", T0 + 7 * H, None, [], [Problem("no format recognises this file", offset=0)])],
        now=T0 + 7 * H)
    return service


def test_q1_stations_updated(client, loaded):
    r = client.get("/api/v1/updated", params={"start": "2018-02-19T08:00:00Z", "end": "2018-02-19T08:30:00Z"})
    assert r.status_code == 200
    body = r.json()
    assert [s["station"] for s in body["stations"]] == ["S1", "S2"]
    assert body["stations"][0]["last_arrival"] == "2018-02-19T08:01:00Z"
    assert body["stations"][1]["feeds"] == ["GOES"]


def test_q2_gaps_with_missing_counts(client, loaded):
    r = client.get("/api/v1/gaps", params={"start": T0, "end": T0 + 6 * H})
    body = r.json()
    assert r.status_code == 200 and body["count"] == 1
    s1 = body["stations"][0]
    assert s1["station"] == "S1" and s1["interval_s"] == H
    assert s1["gaps"] == [{"start": "2018-02-19T04:00:00Z", "end": "2018-02-19T07:00:00Z", "missing": 2, "open": False}]


def test_q3_silent_includes_never_seen(client, loaded):
    r = client.get("/api/v1/silent", params={"start": T0 + 7 * H, "end": T0 + 8 * H})
    names = {s["station"]: s for s in r.json()["stations"]}
    assert set(names) == {"QUIET", "S1"}
    assert names["QUIET"]["never_seen"] is True and names["S1"]["last_arrival"] == "2018-02-19T08:01:00Z"


def test_q4_arrival_times_for_stations(client, loaded):
    r = client.get("/api/v1/arrivals", params=[("station", "S2"), ("station", "S1")])
    rows = r.json()["arrivals"]
    assert [(a["station"], a["received_at"]) for a in rows] == [
        ("S1", "2018-02-19T08:01:00Z"), ("S2", "2018-02-19T08:02:00Z"), ("S2", "2018-02-19T09:02:00Z")]


def test_q5_entries_paginated(client, loaded):
    seen, cursor = [], None
    while True:
        params = {"station": "S1,S2", "limit": 4}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/v1/entries", params=params).json()
        seen += [(e["station"], e["observed_at"], e["values"]["stage"]) for e in body["entries"]]
        cursor = body["next"]
        if not cursor:
            break
    assert len(seen) == 13 and len(set(seen)) == 13
    assert seen[0] == ("S1", "2018-02-19T02:00:00Z", 0.0) and seen[-1] == ("S2", "2018-02-19T09:00:00Z", 7.0)


def test_stations_and_rejected(client, loaded):
    st = client.get("/api/v1/stations").json()["stations"]
    assert [s["station"] for s in st] == ["QUIET", "S1", "S2"]
    assert client.get("/api/v1/stations/S2").json()["entry_count"] == 8
    rej = client.get("/api/v1/rejected").json()["rejected"]
    assert rej[0]["path"] == "/in/junk" and "no format" in rej[0]["reason"]


@pytest.mark.parametrize(
    "url,params,status,needle",
    [
        ("/api/v1/updated", {"start": "yesterday"}, 400, "ISO 8601"),
        ("/api/v1/updated", {"start": "2018-02-20", "end": "2018-02-19"}, 400, "must be before"),
        ("/api/v1/arrivals", {}, 400, "at least one station"),
        ("/api/v1/entries", {"station": "S1", "limit": 0}, 400, "limit"),
        ("/api/v1/entries", {"station": "S1", "limit": "many"}, 400, "limit"),
        ("/api/v1/entries", {"station": "S1", "cursor": "garbage!"}, 400, "cursor"),
        ("/api/v1/stations/NOPE", {}, 404, "no station"),
        ("/api/v1/nothing-here", {}, 404, "/docs"),
    ],
)
def test_bad_requests_get_a_clear_json_4xx(client, loaded, url, params, status, needle):
    r = client.get(url, params=params)
    assert r.status_code == status
    body = r.json()
    assert needle in body["error"] and "Traceback" not in r.text


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/v1/updated", "/api/v1/gaps", "/api/v1/silent", "/api/v1/arrivals", "/api/v1/entries"):
        assert p in paths


def test_overview_page_and_its_data(client, loaded):
    page = client.get("/")
    assert page.status_code == 200 and "telmon" in page.text and "/static/overview.js" in page.text
    assert client.get("/static/overview.js").status_code == 200
    data = client.get("/api/v1/overview").json()
    assert data["status"]["counts"]["stations"] == 3 and len(data["recent"]) == 4
