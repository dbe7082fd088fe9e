"""The alerts API through the real app in-process: list, test a rule, silences, notifications,
the digest preview, and JSON errors for bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from telmon import alerts
from telmon.alerts import api as alerts_api
from telmon.alerts.rules import parse_rules
from telmon.api.app import create_app
from telmon.config import Config
from telmon.service import Service
from tests.alerts.conftest import Clock, Hook, record, register
from tests.support import wait_for

HOUR = 3600.0


@pytest.fixture
def app(tmp_path: Path, clock: Clock, hooks: Any) -> Iterator[tuple[TestClient, Any, Clock, Hook]]:
    hook: Hook = hooks()
    values = {**Config().values, "data_dir": str(tmp_path / "data"), "alert_interval": 0.0,
              "alert_webhooks": [f"chat={hook.url}"]}
    cfg = Config(values=values)
    service = Service(cfg, now=clock)
    installed = alerts.install(service, cfg, rules=parse_rules([
        {"name": "silent", "kind": "silence", "after": "2h"},
        {"name": "very-silent", "kind": "silence", "after": "1d", "severity": "critical"},
    ]))
    a = create_app(service)
    a.include_router(alerts_api.router(installed))
    client = TestClient(a)
    try:
        yield client, installed, clock, hook
    finally:
        client.close()
        service.close()


def test_list_test_silence_unsilence(app: Any) -> None:
    client, installed, clock, hook = app
    register(installed.store, ["A", "B"], clock.t - 10 * HOUR)
    record(installed.store, "B", clock.t - 600)
    rules = client.get("/api/v1/alerts/rules").json()
    assert [r["name"] for r in rules["rules"]] == ["silent", "very-silent"]
    assert rules["rules"][0]["threshold"] == "" and rules["rules"][0]["params"] == {"after": 7200.0,
                                                                                   }
    tested = client.post("/api/v1/alerts/rules/silent/test").json()
    assert [(a["subject"], a["value_text"]) for a in tested["active"]] == [("A", "10h")]
    assert client.get("/api/v1/alerts").json()["alerts"] == []  # a test changes nothing

    made = client.post("/api/v1/alerts/silences", json={"rule": "silent", "subject": "A", "for": "2h",
                                                        "comment": "site visit", "created_by": "kim"})
    assert made.status_code == 201
    sid = made.json()["silence"]["id"]
    assert made.json()["matches_rules"] == ["silent"]
    assert client.post("/api/v1/alerts/rules/silent/test").json()["active"][0]["silenced"] is True
    r = client.post("/api/v1/alerts/evaluate").json()
    assert r["firing"] == 1 and r["suppressed"] == 1
    listed = client.get("/api/v1/alerts").json()
    assert [(a["rule"], a["subject"], a["state"], a["value_text"]) for a in listed["alerts"]] == [
        ("silent", "A", "firing", "10h")]
    assert [s["id"] for s in listed["silences"]] == [sid]
    assert client.get("/api/v1/alerts/notifications").json()["count"] == 0

    gone = client.delete(f"/api/v1/alerts/silences/{sid}").json()
    assert gone["silence"]["expired_at"] is not None
    assert client.get("/api/v1/alerts/silences").json()["count"] == 0
    assert client.get("/api/v1/alerts/silences?all=true").json()["count"] == 1
    client.post("/api/v1/alerts/evaluate")
    wait_for(lambda: hook.received, what="the webhook")
    assert hook.received[0]["alerts"][0]["subject"] == "A"


def test_test_with_notify_goes_through_the_channel_workers(app: Any) -> None:
    client, installed, clock, hook = app
    register(installed.store, ["A"], clock.t - 10 * HOUR)
    body = client.post("/api/v1/alerts/rules/silent/test?notify=true").json()
    assert [n["channel"] for n in body["notifications"]] == ["webhook:chat"]
    wait_for(lambda: hook.received, what="the test webhook")
    assert hook.received[0]["kind"] == "test" and hook.received[0]["title"].startswith("[telmon] TEST FIRING")
    assert client.get("/api/v1/alerts").json()["alerts"] == []


@pytest.mark.parametrize(("method", "path", "body", "status", "words"), [
    ("post", "/api/v1/alerts/rules/nope/test", None, 404, "no rule 'nope'"),
    ("get", "/api/v1/alerts?rule=nope", None, 404, "no rule 'nope'"),
    ("post", "/api/v1/alerts/silences", {"subject": "A", "for": "1h"}, 400, "rule"),
    ("post", "/api/v1/alerts/silences", {"rule": "silent"}, 400, "one of them"),
    ("post", "/api/v1/alerts/silences", {"rule": "silent", "for": "1h", "until": "2030-01-01"}, 400, "one of them"),
    ("post", "/api/v1/alerts/silences", {"rule": "silent", "for": "soon"}, 400, "span"),
    ("post", "/api/v1/alerts/silences", {"rule": "silent", "until": "2000-01-01"}, 400, "future"),
    ("post", "/api/v1/alerts/silences", {"rule": "silent", "for": "1h", "colour": "red"}, 400, "unknown field"),
    ("delete", "/api/v1/alerts/silences/99", None, 404, "no silence 99"),
    ("delete", "/api/v1/alerts/silences/x", None, 400, "number"),
    ("get", "/api/v1/alerts/notifications?status=lost", None, 400, "status"),
    ("get", "/api/v1/alerts?limit=0", None, 400, "limit"),
])
def test_bad_requests_are_json_errors(app: Any, method: str, path: str, body: Any, status: int, words: str) -> None:
    client = app[0]
    r = client.request(method.upper(), path, json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_digest_preview(app: Any) -> None:
    client, installed, clock, _ = app
    register(installed.store, ["A", "B"], clock.t - 10 * HOUR)
    record(installed.store, "B", clock.t - 600, feed="GOES")
    client.post("/api/v1/alerts/evaluate")
    text = client.get("/api/v1/alerts/digest").text
    assert text.startswith("Subject: [telmon] daily report: 1 alerts fired, 1 firing, 1 stations silent")
    assert "STATIONS SILENT over the period: 1" in text and "COMPLETENESS PER SOURCE" in text
