"""`telmon alerts ...` as thin wrappers: run through click on a real store file."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from telmon.alerts import db, ops
from telmon.alerts.cli import register
from telmon.alerts.evaluator import Evaluator
from telmon.alerts.rules import parse_rules
from telmon.alerts.settings import AlertSettings
from telmon.config import Config
from telmon.store.sqlite import SQLiteStore
from tests.alerts.conftest import Hook, register as register_stations

# `[[rules]]` in a config file needs telmon.config to parse them (docs/alerts.md, wiring).
WIRED = "rules" in {f.name for f in dataclasses.fields(Config)}


@pytest.fixture
def cli() -> click.Group:
    group = click.Group("telmon")
    register(group)
    return group


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    path = tmp_path / "telmon.db"
    st = SQLiteStore(path)
    register_stations(st, ["A", "B"], time.time() - 36000)
    st.close()
    return str(path)


def run(cli: click.Group, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_silence_list_unsilence(cli: click.Group, db_path: str) -> None:
    out = run(cli, "alerts", "silence", "silent*", "--subject", "A", "--for", "2h", "--comment", "maintenance",
              "--by", "kim", "--store", db_path)
    assert out.startswith("silence 1: rule silent* subject A until ")
    listed = json.loads(run(cli, "alerts", "list", "--json", "--store", db_path))
    assert [(s["rule"], s["subject"], s["comment"], s["created_by"]) for s in listed["silences"]] == [
        ("silent*", "A", "maintenance", "kim")]
    assert "maintenance" in run(cli, "alerts", "list", "--store", db_path)
    assert "silence 1 expired at" in run(cli, "alerts", "unsilence", "1", "--store", db_path)
    assert json.loads(run(cli, "alerts", "list", "--json", "--store", db_path))["silences"] == []
    err = run(cli, "alerts", "unsilence", "7", "--store", db_path, code=1)
    assert "no silence 7" in err
    err = run(cli, "alerts", "silence", "x", "--store", db_path, code=1)
    assert "one of them" in err


def test_notifications_and_digest(cli: click.Group, db_path: str, hooks: Any) -> None:
    st = SQLiteStore(db_path)
    try:
        settings = AlertSettings(alert_webhooks=["http://127.0.0.1:9/x"])
        Evaluator(st, parse_rules([{"name": "silent", "kind": "silence", "after": "1h"}]), settings).evaluate(
            time.time())
    finally:
        st.close()
    out = run(cli, "alerts", "notifications", "--store", db_path)
    assert "webhook:webhook1" in out and "queued" in out and "FIRING silent (2)" in out
    assert "STATIONS SILENT over the period: 2" in run(cli, "alerts", "digest", "--store", db_path)


def test_test_rule_delivered_from_this_process(db_path: str, hooks: Any) -> None:
    """What `telmon alerts test NAME --notify` does: one attempt now, the outcome recorded."""
    good: Hook = hooks()
    st = SQLiteStore(db_path)
    try:
        settings = AlertSettings(alert_webhooks=[f"good={good.url}", "bad=http://127.0.0.1:9/refused"])
        ev = Evaluator(st, parse_rules([{"name": "silent", "kind": "silence", "after": "1h"}]), settings)
        data = ops.test_rule(ev, "silent", now=time.time(), notify=True, deliver_here=True)
        assert data["count"] == 2
        by_channel = {n["channel"]: n for n in data["notifications"]}
        assert by_channel["webhook:good"]["status"] == "sent"
        assert by_channel["webhook:bad"]["status"] == "failed" and by_channel["webhook:bad"]["last_error"]
        assert good.received[0]["kind"] == "test"
        assert db.states(st) == []
    finally:
        st.close()


@pytest.mark.skipif(not WIRED, reason="telmon.config does not parse [[rules]] yet (see docs/alerts.md, wiring)")
def test_rules_from_the_config_file(cli: click.Group, db_path: str, tmp_path: Path) -> None:
    conf = tmp_path / "telmon.toml"
    conf.write_text(f'store = "{db_path}"\n\n[[rules]]\nname = "silent"\nkind = "silence"\nafter = "1h"\n'
                    'for = "10m"\nseverity = "critical"\n')
    out = run(cli, "alerts", "test", "silent", "--config", str(conf))
    assert "rule silent (silence ): 2 subject(s) active now" in out
    listed = json.loads(run(cli, "alerts", "list", "--json", "--config", str(conf)))
    assert [r["name"] for r in listed["rules"]] == ["silent"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\nname = "x"\nkind = "silence"\n')
    assert "rules[1].after" in run(cli, "alerts", "list", "--config", str(bad), code=1)
