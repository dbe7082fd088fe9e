"""The `telmon series|revert|rollup` commands and GET /api/v1/series, on a real store."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from telmon.errors import TelmonError
from telmon.rollup import api, cli
from telmon.rollup.store import SeriesStore
from telmon.store.sqlite import SQLiteStore

from .conftest import NOW

DAY = 86400


@click.group()
def main() -> None:
    """Stands in for the telmon group."""


cli.register(main)


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "telmon.db"
    store = SQLiteStore(path)
    ss = SeriesStore(store)
    ts = NOW - DAY + np.arange(0, DAY, 60.0)
    rng = np.random.default_rng(1)
    ss.write([("a.cpu", ts, rng.normal(50, 5, len(ts))), ("b.cpu", ts, rng.normal(20, 5, len(ts)))], now=NOW)
    store.close()
    return str(path)


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, [*args], catch_exceptions=False)


def test_series_command_json_csv_and_table(db: str) -> None:
    out = run("series", "a.cpu", "--store", db, "--now", str(NOW), "--start", "-1d", "--step", "1h",
              "--stat", "count,p95", "--json")
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert body["step"] == 3600 and len(body["series"][0]["points"]) == 24
    assert all(p["count"] == 60 for p in body["series"][0]["points"])
    out = run("series", "*.cpu", "--store", db, "--now", str(NOW), "--step", "span", "--agg", "merge", "--csv")
    rows = list(csv.reader(io.StringIO(out.output)))
    assert rows[0][:3] == ["series", "time", "count"] and rows[1][0] == "*.cpu" and rows[1][2] == "2880"
    out = run("series", "b.cpu", "--store", db, "--now", str(NOW), "--step", "6h", "--stat", "mean")
    assert out.exit_code == 0 and out.output.splitlines()[0].split() == ["series", "time", "mean"]
    assert len(out.output.splitlines()) == 5


def test_errors_become_one_line_and_exit_1(db: str) -> None:
    out = CliRunner().invoke(main, ["series", "nope", "--store", db, "--now", str(NOW)])
    assert out.exit_code == 1 and "no series 'nope'" in out.output
    out = CliRunner().invoke(main, ["series", "a.cpu", "--store", db, "--now", str(NOW), "--stat", "avg"])
    assert out.exit_code == 1 and "unknown stat" in out.output
    out = CliRunner().invoke(main, ["revert", "999", "--store", db, "--now", str(NOW)])
    assert out.exit_code == 1 and "no series batch 999" in out.output


def test_revert_and_maintenance_commands(db: str) -> None:
    store = SQLiteStore(db)
    batch = SeriesStore(store).write([("a.cpu", [NOW - 30], [1e6])], now=NOW).batch_id
    store.close()
    out = run("revert", str(batch), "--store", db, "--now", str(NOW), "--json")
    assert json.loads(out.output)["samples_removed"] == 1
    body = json.loads(run("series", "a.cpu", "--store", db, "--now", str(NOW), "--step", "span", "--stat", "max",
                          "--json").output)
    assert body["series"][0]["points"][0]["max"] < 100
    assert "chunks deleted: 0" in run("rollup", "prune", "--store", db, "--now", str(NOW)).output
    out = run("rollup", "rebuild", "--series", "*.cpu", "--since", "-6h", "--store", db, "--now", str(NOW))
    assert out.output.startswith("2 series")
    out = run("rollup", "policy", "set", "b.*", "raw:1d,5m:30d,1d:1y", "--store", db)
    assert "raw:1d,5m:30d,1d:1y" in out.output
    assert "b.*  raw:1d,5m:30d,1d:1y" in run("rollup", "policy", "list", "--store", db).output
    body = json.loads(run("rollup", "reshape", "--store", db, "--now", str(NOW), "--json").output)
    assert body["series"] == 1 and body["tiers_built"] == 1 and body["tiers_dropped"] == 2
    listing = run("rollup", "list", "--store", db).output
    assert "b.cpu  raw:1d,5m:30d,1d:1y" in listing
    assert run("rollup", "policy", "remove", "b.*", "--store", db).exit_code == 0
    assert CliRunner().invoke(main, ["rollup", "policy", "remove", "b.*", "--store", db]).exit_code == 1


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    store = SQLiteStore(tmp_path / "api.db")
    ss = SeriesStore(store)
    now = time.time()
    ts = now - 3 * 3600 + np.arange(0, 3 * 3600, 60.0)
    ss.write([("rx.a", ts, np.full(len(ts), 2.0)), ("rx.b", ts, np.full(len(ts), 3.0))], now=now)
    app = FastAPI()
    app.state.series = ss
    app.include_router(api.router)

    @app.exception_handler(TelmonError)
    async def telmon_error(request: Request, exc: TelmonError) -> JSONResponse:
        return JSONResponse(exc.to_json(), status_code=exc.status)

    with TestClient(app) as c:
        yield c
    store.close()


def test_http_json_and_csv(client: TestClient) -> None:
    r = client.get("/api/v1/series", params={"name": "rx.*", "start": "-2h", "step": "1h", "stat": ["count", "mean"],
                                             "agg": "sum"})
    assert r.status_code == 200
    body = r.json()
    assert body["series"][0]["members"] == ["rx.a", "rx.b"]
    assert body["series"][0]["points"][-2]["mean"] == 5.0
    r = client.get("/api/v1/series", params={"name": "rx.a", "start": "-2h", "step": "span", "stat": "count,p50",
                                             "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["series", "time", "count", "p50"] and rows[1][3] == "2.0"


def test_http_errors_are_json_4xx(client: TestClient) -> None:
    r = client.get("/api/v1/series", params={"name": "rx.a", "stat": "avg"})
    assert r.status_code == 400 and r.json()["field"] == "stats"
    assert client.get("/api/v1/series", params={"name": "none.*"}).status_code == 404
    assert client.get("/api/v1/series", params={"name": "rx.a", "start": "yesterday"}).status_code == 400
    assert client.get("/api/v1/series", params={"name": "rx.a", "format": "xml"}).status_code == 400
