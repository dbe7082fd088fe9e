"""Health routes on a real service: /metrics parsed with prometheus_client's own parser, one
registry per app, request latencies by route template, /readyz failing for each reason,
/api/v1/health, and `telmon status` against a live server and without one."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from telmon import health
from telmon.api.app import create_app
from telmon.config import Config, WatchSpec
from telmon.service import Service
from tests.support import TIMEOUT, wait_for

EDL = b'//STATION HX1\n//DEVICE STAGE\n//OVERWRITE true\n"2024/05/01 12:00", 1.25\n'


def make(tmp_path: Path, **values: Any) -> tuple[Service, TestClient]:
    cfg = Config(values={**Config().values, "data_dir": str(tmp_path / "data"), **values})
    service = Service(cfg)
    app = create_app(service)
    health.install(app, service)
    return service, TestClient(app)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Service, TestClient]]:
    service, client = make(tmp_path)
    service.start()
    try:
        yield service, client
    finally:
        client.close()
        service.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_count_ingest_per_source_and_time_requests(served: Any, tmp_path: Path) -> None:
    service, client = served
    good, bad = tmp_path / "HX1.edl", tmp_path / "junk.bin"
    good.write_bytes(EDL)
    bad.write_bytes(b"\x00\x01 not telemetry")
    service.worker.submit(good, "GOES")
    service.worker.submit(bad, "rsync")
    assert service.worker.wait_idle(TIMEOUT)
    assert client.get("/api/v1/stations/HX1").status_code == 200
    assert client.get("/api/v1/stations/NOPE").status_code == 404
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    m = samples(r.text)
    assert m[("telmon_files_ingested_total", ())] == 2
    assert m[("telmon_files_rejected_total", ())] == 1
    assert m[("telmon_arrivals_ingested_total", ())] == 1
    assert m[("telmon_source_arrivals_total", (("feed", "GOES"),))] == 1
    assert m[("telmon_source_files_total", (("feed", "rsync"),))] == 1
    assert m[("telmon_source_rejected_total", (("feed", "rsync"),))] == 1
    assert m[("telmon_ingest_queue_files", ())] == 0 and m[("telmon_ingest_lag_seconds", ())] == 0
    assert m[("telmon_store_up", ())] == 1
    assert m[("telmon_component_up", (("kind", "ingest"), ("name", "ingest")))] == 1
    # latencies by route template, never the raw path
    ok = (("method", "GET"), ("route", "/api/v1/stations/{code}"), ("status", "200"))
    missing = (("method", "GET"), ("route", "/api/v1/stations/{code}"), ("status", "404"))
    assert m[("telmon_http_request_duration_seconds_count", ok)] == 1
    assert m[("telmon_http_request_duration_seconds_count", missing)] == 1
    assert not any("HX1" in dict(labels).get("route", "") for _, labels in m)


def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    made = [make(tmp_path / str(i)) for i in range(2)]
    try:
        for service, client in made:
            client.get("/api/v1/stations")
        counts = [samples(c.get("/metrics").text) for _, c in made]
        key = ("telmon_http_request_duration_seconds_count",
               (("method", "GET"), ("route", "/api/v1/stations"), ("status", "200")))
        assert counts[0][key] == 1 and counts[1][key] == 1
    finally:
        for service, client in made:
            client.close()
            service.close()


def test_healthz_readyz_and_health_report(served: Any) -> None:
    service, client = served
    # the health router's /healthz (create_app's minimal one, if it still has one, gave way)
    body = client.get("/healthz").json()
    assert body["ok"] is True and body["uptime_s"] >= 0
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True
    report = client.get("/api/v1/health").json()
    assert report["ready"] is True
    assert {c["id"] for c in report["components"]} >= {"store", "ingest"}


def test_readyz_fails_when_not_started_or_store_closed(tmp_path: Path) -> None:
    service, client = make(tmp_path)
    try:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["failing"] == [{"check": "ingest", "ok": False, "reason": "ingest is stopped"}]
        service.start()
        assert client.get("/readyz").status_code == 200
        service.store.close()
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["failing"][0]["check"] == "store"
        assert "closed" in r.json()["failing"][0]["reason"]
    finally:
        client.close()
        service.close()


def test_readyz_fails_when_a_watcher_dies(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    service, client = make(tmp_path)
    service.config.watch.append(WatchSpec(str(inbox), "GOES"))
    service.start()
    try:
        assert client.get("/readyz").status_code == 200
        [(_spec, watcher)] = service.watchers
        watcher.stop()
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["failing"][0]["check"] == f"watcher:{inbox}"
    finally:
        client.close()
        service.close()


def test_readyz_fails_when_the_outbox_is_stuck(tmp_path: Path) -> None:
    # a Redis sink nobody listens to: rows wait, and once the oldest is older than the limit, stuck
    service, client = make(tmp_path, redis_url="redis://127.0.0.1:9/0", redis_formats=["edl"],
                           health_stuck_after=60.0, sink_retry_max=0.5)
    service.start()
    try:
        with service.store.transaction() as conn:  # type: ignore[attr-defined]
            conn.execute("INSERT INTO outbox(sink, msg_id, arrival_id, created_at, payload) VALUES "
                         "('redis', 'm1', NULL, ?, '{}')", (time.time() - 120,))
        r = client.get("/readyz")
        assert r.status_code == 503
        [failing] = r.json()["failing"]
        assert failing["check"] == "sink:redis" and failing["reason"].startswith("outbox stuck: 1 rows")
        m = samples(client.get("/metrics").text)
        assert m[("telmon_outbox_pending", (("sink", "redis"),))] == 1
        assert m[("telmon_outbox_oldest_age_seconds", (("sink", "redis"),))] >= 120
    finally:
        client.close()
        service.close()


# --- telmon status -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cli() -> click.Group:
    from telmon.health.cli import register

    group = click.Group("telmon")
    register(group)
    return group


def test_status_against_a_live_server(tmp_path: Path, cli: click.Group) -> None:
    import uvicorn

    service, client = make(tmp_path)
    client.close()
    service.start()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(client.app, host="127.0.0.1", port=port, log_level="warning",
                                          lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, what="uvicorn")
        result = CliRunner().invoke(cli, ["status", "--url", f"http://127.0.0.1:{port}"])
        assert result.exit_code == 0, result.output
        assert "ready" in result.output.splitlines()[0]
        assert any(line.startswith("ingest") and " ok " in line for line in result.output.splitlines())
        data = json.loads(CliRunner().invoke(cli, ["status", "--json", "--url", f"http://127.0.0.1:{port}"]).output)
        assert data["ready"] is True and data["source"] == f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        service.close()


def test_status_without_a_server_reads_the_store(tmp_path: Path, cli: click.Group) -> None:
    service, client = make(tmp_path)
    db_path = service.store.url.removeprefix("sqlite:///")
    client.close()
    service.close()
    port = _free_port()
    result = CliRunner().invoke(cli, ["status", "--url", f"http://127.0.0.1:{port}", "--store", db_path])
    assert result.exit_code == 2
    assert result.output.startswith(f"telmon serve is not answering at http://127.0.0.1:{port}")


def test_a_tailer_shows_in_metrics_and_health(tmp_path: Path) -> None:
    import shutil

    from telmon.tail.service import install as install_tail
    from telmon.tail.settings import TailSettings
    from tests.support import SAMPLES

    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(SAMPLES / "metpx" / "tx_loop.log", logs / "tx_loop.log")
    service, client = make(tmp_path)
    install_tail(service, TailSettings(dirs=[str(logs)], machine="px1", interval=0.05))
    service.start()
    try:
        wait_for(lambda: service.tail.tailer.status.lines > 0, what="the tailer to read the log")
        wait_for(lambda: service.tail.tailer.status.pending_bytes == 0, what="the tailer to catch up")
        m = samples(client.get("/metrics").text)
        assert m[("telmon_tail_lines_total", (("machine", "px1"),))] > 0
        assert m[("telmon_component_up", (("kind", "tailer"), ("name", "px1")))] == 1
        report = client.get("/api/v1/health").json()
        [tailer] = [c for c in report["components"] if c["kind"] == "tailer"]
        assert tailer["state"] == "ok" and tailer["lag_s"] is not None and tailer["detail"]["dirs"] == [str(logs)]
        assert {"check": "tailer:px1", "ok": True, "reason": None} in report["checks"]
    finally:
        client.close()
        service.close()
