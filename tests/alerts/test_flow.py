"""The whole flow inside a running telmon: a station goes silent, the alert goes pending, then
firing, an e-mail arrives at a real SMTP server; the station reports again through the real
watcher and ingest path, the alert resolves and a second e-mail says so.  The evaluation
clock is passed in; delivery runs on its own threads in real time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from telmon import alerts, health
from telmon.alerts import api as alerts_api
from telmon.alerts.rules import parse_rules
from telmon.api.app import create_app
from telmon.config import Config, WatchSpec
from telmon.service import Service
from tests.alerts.conftest import Clock, Mailbox, record
from tests.support import holds, wait_for

RULES = [{"name": "station-silent", "kind": "silence", "after": "1h", "for": "15m", "severity": "critical",
          "labels": {"network": "goes"}, "subjects": ["OKX*"]}]


def edl(code: str, t: float) -> bytes:
    stamp = time.strftime("%Y/%m/%d %H:%M", time.gmtime(t))
    return f'//STATION {code}\n//DEVICE STAGE\n//OVERWRITE true\n"{stamp}", 1.25\n'.encode()


@pytest.fixture
def running(tmp_path: Path, smtp: Mailbox) -> Iterator[tuple[Service, Any, TestClient, Clock, Path]]:
    # received_at comes from the file's ctime (real time), so the clock starts in the real past
    clock = Clock(time.time() - 2.5 * 3600)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    values = {**Config().values, "data_dir": str(tmp_path / "data"), "alert_interval": 0.0, **smtp.settings()}
    cfg = Config(values=values, watch=[WatchSpec(str(inbox), "GOES")])
    service = Service(cfg, now=clock)
    installed = alerts.install(service, cfg, rules=parse_rules(RULES))
    app = create_app(service)
    health.install(app, service)
    app.include_router(alerts_api.router(installed))
    service.start()
    client = TestClient(app)
    try:
        yield service, installed, client, clock, inbox
    finally:
        client.close()
        service.close()


def firing_gauge(client: TestClient) -> float:
    for fam in text_string_to_metric_families(client.get("/metrics").text):
        for s in fam.samples:
            if s.name == "telmon_alerts" and s.labels["rule"] == "station-silent" and s.labels["state"] == "firing":
                return s.value
    raise AssertionError("no telmon_alerts sample")


def test_station_goes_silent_mail_arrives_then_it_resolves(running: Any, smtp: Mailbox) -> None:
    service, installed, client, clock, inbox = running
    record(service.store, "OKX1", clock.t, feed="GOES")  # heard at the start
    record(service.store, "OTHER", clock.t, feed="GOES")  # not covered by the rule's subjects
    assert installed.evaluate(clock.advance(60)).firing == 0

    r = installed.evaluate(clock.advance(3600))
    assert (r.pending, r.firing) == (1, 0)
    assert client.get("/api/v1/alerts").json()["alerts"][0]["state"] == "pending"
    r = installed.evaluate(clock.advance(15 * 60))
    assert (r.pending, r.firing, r.notifications) == (0, 1, 1)

    [mail] = smtp.wait(1)
    assert mail["Subject"] == "[telmon] FIRING station-silent OKX1"
    assert mail["To"] == "ops@example.org" and smtp.tls == [True]
    text = mail.get_payload(decode=True).decode()
    assert "[critical] station-silent: OKX1: no arrival for 1h16m" in text and "network=goes" in text
    listed = client.get("/api/v1/alerts").json()
    assert [(a["subject"], a["state"]) for a in listed["alerts"]] == [("OKX1", "firing")]
    assert listed["rules"][0]["firing"] == 1
    assert firing_gauge(client) == 1

    # a later pass announces nothing new
    installed.evaluate(clock.advance(60))
    holds(lambda: len(smtp.messages) == 1, 0.2, what="no second e-mail")

    # the station reports again, through the watcher and the ingest worker
    (inbox / "OKX1.edl").write_bytes(edl("OKX1", time.time()))
    wait_for(lambda: (service.store.station("OKX1") or {}).get("arrival_count") == 2, what="the new arrival")
    clock.t = time.time() + 1
    r = installed.evaluate(clock.t)
    assert (r.pending, r.firing, r.notifications) == (0, 0, 1)
    mails = smtp.wait(2)
    assert mails[1]["Subject"] == "[telmon] RESOLVED station-silent OKX1"
    assert "Resolved: 1" in mails[1].get_payload(decode=True).decode()
    assert client.get("/api/v1/alerts").json()["alerts"] == []
    assert firing_gauge(client) == 0
    notes = client.get("/api/v1/alerts/notifications").json()["notifications"]
    assert [(n["status"], n["attempts"]) for n in notes] == [("sent", 1), ("sent", 1)]
