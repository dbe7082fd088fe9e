"""docs/alerts.md keeps up with the code: every setting, every rule kind, every metric."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from telmon import alerts, health
from telmon.alerts.rules import KINDS, LAG_METRICS, TRANSFER_METRICS, parse_rules
from telmon.api.app import create_app
from telmon.config import Config
from telmon.service import Service

DOC = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text()


def test_every_setting_is_documented_with_its_default() -> None:
    for name, default, _help, _type in (*alerts.SETTINGS, *health.SETTINGS):
        assert f"| `{name}` | `{default!r}` |" in DOC, f"{name} missing from docs/alerts.md"


def test_every_kind_and_metric_word_is_documented() -> None:
    for kind in KINDS:
        assert f"| `{kind}` |" in DOC
    for word in (*TRANSFER_METRICS, *LAG_METRICS):
        assert f"`{word}`" in DOC


def test_every_prometheus_metric_is_documented(tmp_path: Path) -> None:
    cfg = Config(values={**Config().values, "data_dir": str(tmp_path), "alert_interval": 0.0,
                         "alert_webhooks": ["http://127.0.0.1:9/x"]})
    service = Service(cfg)
    try:
        running = alerts.install(service, cfg, rules=parse_rules([{"name": "s", "kind": "silence", "after": "1h"}]))
        running.evaluate()
        app = create_app(service)
        health.install(app, service)
        with TestClient(app) as client:
            client.get("/api/v1/stations")
            text = client.get("/metrics").text
    finally:
        service.close()
    names = {re.sub(r"_(bucket|count|sum|created)$", "", s.name)
             for fam in text_string_to_metric_families(text) for s in fam.samples}
    assert "telmon_alerts" in names and "telmon_http_request_duration_seconds" in names
    for name in sorted(names):
        assert f"`{name}`" in DOC, f"{name} missing from docs/alerts.md"
