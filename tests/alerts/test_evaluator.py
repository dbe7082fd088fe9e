"""Evaluation passes on a real store, driven by a clock passed in: each kind of rule over its
real source (stations, schedules, transfer statistics, series, rejections, telmon's own lag),
de-duplication across restarts, silences, and sources that fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from telmon.alerts import db
from telmon.alerts.evaluator import Evaluator
from telmon.alerts.rules import parse_rules
from telmon.alerts.settings import AlertSettings
from telmon.rollup.store import SeriesStore
from telmon.schedule import query as sq
from telmon.schedule.settings import ScheduleSettings
from telmon.schedule.store import SlotRecorder
from telmon.schedule.store import ensure_schema as schedule_schema
from telmon.store.base import FileRecord
from telmon.store.sqlite import SQLiteStore
from tests.alerts.conftest import Clock, record, register

HOUR = 3600.0
WEBHOOK = AlertSettings(alert_webhooks=["ops=http://127.0.0.1:9/hook"])


def evaluator(store: SQLiteStore, rules: list[dict[str, Any]], **kw: Any) -> Evaluator:
    kw.setdefault("settings", WEBHOOK)
    return Evaluator(store, parse_rules(rules), **kw)


def alert_map(ev: Evaluator, rule: str) -> dict[str, str]:
    return {a.subject: a.state for a in db.states(ev.store, rule=rule)}


def test_silence_rule_over_the_registry(store: SQLiteStore, clock: Clock) -> None:
    register(store, ["A", "B", "C"], clock.t - 10 * HOUR)
    record(store, "A", clock.t - 0.5 * HOUR)
    record(store, "B", clock.t - 3 * HOUR)
    ev = evaluator(store, [{"name": "silent", "kind": "silence", "after": "2h", "for": "15m"},
                           {"name": "silent-heard", "kind": "silence", "after": "2h", "include_never": False}])
    r = ev.evaluate(clock.t)
    assert r.pending == 2 and r.firing == 1 and r.errors == {}
    # one read of the station registry serves both rules
    assert r.reads == 2
    assert alert_map(ev, "silent") == {"B": "pending", "C": "pending"}
    assert alert_map(ev, "silent-heard") == {"B": "firing"}
    clock.advance(15 * 60)
    r = ev.evaluate(clock.t)
    assert alert_map(ev, "silent") == {"B": "firing", "C": "firing"}
    firing = {a.subject: a for a in db.states(store, rule="silent")}
    assert firing["B"].summary == "B: no arrival for 3h15m"
    assert firing["C"].detail["never"] is True
    # B reports again: resolved, C keeps firing
    record(store, "B", clock.t)
    ev.evaluate(clock.advance(60))
    assert alert_map(ev, "silent") == {"C": "firing"}
    resolved = db.states(store, rule="silent", include_resolved_since=0)
    assert {a.subject: a.state for a in resolved} == {"B": "resolved", "C": "firing"}
    kinds = [(e["subject"], e["kind"]) for e in db.events_between(store, 0, clock.t + 1) if e["rule"] == "silent"]
    assert kinds == [("B", "firing"), ("C", "firing"), ("B", "resolved")]


def test_notifications_are_queued_once_per_transition_even_across_restarts(store: SQLiteStore,
                                                                            clock: Clock) -> None:
    register(store, ["A"], clock.t - 10 * HOUR)
    rules = [{"name": "silent", "kind": "silence", "after": "2h"}]
    ev = evaluator(store, rules)
    ev.evaluate(clock.t)
    assert [(n.channel, n.kind, n.status) for n in db.notifications(store)] == [("webhook:ops", "alerts", "queued")]
    ev.evaluate(clock.advance(60))
    # a new process on the same store: the alert is known, nothing is announced again
    ev2 = evaluator(store, rules)
    ev2.evaluate(clock.advance(60))
    assert len(db.notifications(store)) == 1
    body = db.notifications(store)[0].payload["body"]
    assert body["status"] == "firing" and [a["subject"] for a in body["alerts"]] == ["A"]
    assert body["alerts"][0]["summary"] == "A: no arrival for 10h"
    record(store, "A", clock.t)
    ev2.evaluate(clock.advance(60))
    notes = db.notifications(store)
    assert len(notes) == 2 and notes[0].payload["body"]["status"] == "resolved"


def test_silences_hold_back_notifications_until_they_expire(store: SQLiteStore, clock: Clock) -> None:
    register(store, ["A", "B"], clock.t - 10 * HOUR)
    ev = evaluator(store, [{"name": "silent", "kind": "silence", "after": "2h"}])
    s = db.add_silence(store, "sil*", "A", starts_at=clock.t, expires_at=clock.t + HOUR, now=clock.t)
    r = ev.evaluate(clock.t)
    assert r.firing == 2 and r.suppressed == 1
    [note] = db.notifications(store)
    assert [a["subject"] for a in note.payload["body"]["alerts"]] == ["B"]
    ev.evaluate(clock.advance(30 * 60))
    assert len(db.notifications(store)) == 1
    db.expire_silence(store, s.id, now=clock.t)
    ev.evaluate(clock.advance(60))
    notes = db.notifications(store)
    assert len(notes) == 2 and [a["subject"] for a in notes[0].payload["body"]["alerts"]] == ["A"]


@pytest.fixture
def network(tmp_path: Path, store: SQLiteStore, clock: Clock) -> SQLiteStore:
    """Hourly stations (5-minute windows): OK reports every hour, GAPPY misses the last three
    hours, OLD stopped three days ago, NEVER was never heard."""
    schedule_schema(store)
    store.record_hooks.append(SlotRecorder(ScheduleSettings()))
    reg = tmp_path / "stations.csv"
    reg.write_text("id,name,interval,first,window\nOK,ok,1h,0,300\nGAPPY,gappy,1h,0,300\nOLD,old,1h,0,300\n"
                   "NEVER,never,1h,0,300\n")
    sq.import_file(store, reg, now=clock.t - 5 * 86400)
    top = clock.t  # 12:00, a slot start
    for h in range(48, -1, -1):
        t = top - h * HOUR
        record(store, "OK", t + 60, observed=t)
        if h >= 3:
            record(store, "GAPPY", t + 60, observed=t)
    for h in range(24):
        t = top - 3 * 86400 - h * HOUR
        record(store, "OLD", t + 60, observed=t)
    clock.advance(30 * 60)
    return store


def test_schedule_rules_completeness_missing_status(network: SQLiteStore, clock: Clock) -> None:
    ev = evaluator(network, [
        {"name": "complete", "kind": "completeness", "span": "24h", "below": 95},
        {"name": "missing", "kind": "missing", "span": "6h", "above": 1},
        {"name": "down", "kind": "status", "status": ["D", "U"]},
        {"name": "gappy-only", "kind": "missing", "span": "6h", "subjects": ["GAP*"]},
    ])
    r = ev.evaluate(clock.t)
    assert r.errors == {}
    complete = {a.subject: a for a in db.states(network, rule="complete")}
    # OLD stopped three days ago: 0 % of its expected slots
    assert set(complete) == {"GAPPY", "OLD"} and complete["GAPPY"].value == pytest.approx(87.5)
    assert complete["OLD"].value == 0
    assert complete["GAPPY"].summary == "GAPPY: completeness 87.5% (< 95)"
    missing = {a.subject: a.value for a in db.states(network, rule="missing")}
    assert missing == {"GAPPY": 3.0, "OLD": 6.0}
    assert alert_map(ev, "down") == {"OLD": "firing", "NEVER": "firing"}
    assert alert_map(ev, "gappy-only") == {"GAPPY": "firing"}


def test_transfer_and_series_rules(store: SQLiteStore, clock: Clock) -> None:
    series = SeriesStore(store)
    now = clock.t
    times = [now - 600 + i * 10 for i in range(50)]
    series.write([
        ("transfers/tx/amis/px1/bulletin/latency", times, [40.0] * 50),
        ("transfers/tx/amis/px1/bulletin/errors", times[:5], [1.0] * 5),
        ("transfers/tx/fast/px1/bulletin/latency", times, [1.0] * 50),
        ("transfers/rx/quiet/px1/bulletin/latency", [now - 7200], [1.0]),
        ("host.web1.cpu.total", times, [95.0] * 50),
        ("host.web2.cpu.total", times, [10.0] * 50),
    ], now=now)
    ev = evaluator(store, [
        {"name": "slow", "kind": "transfer", "metric": "latency_p95", "span": "15m", "above": 30},
        {"name": "errors", "kind": "transfer", "metric": "errors", "span": "15m", "above": 0},
        {"name": "idle", "kind": "transfer", "metric": "files", "span": "15m", "below": 1, "direction": "rx"},
        {"name": "cpu", "kind": "series", "series": "host.*.cpu.total", "stat": "mean", "span": "5m", "above": 90},
    ], series=series)
    r = ev.evaluate(now)
    assert r.errors == {}
    slow = {a.subject: a.value for a in db.states(store, rule="slow")}
    assert list(slow) == ["tx/amis"] and slow["tx/amis"] == pytest.approx(40, rel=0.02)
    assert {a.subject: a.value for a in db.states(store, rule="errors")} == {"tx/amis": 5.0}
    assert alert_map(ev, "idle") == {"rx/quiet": "firing"}
    cpu = {a.subject: a.value for a in db.states(store, rule="cpu")}
    assert cpu == {"host.web1.cpu.total": pytest.approx(95.0)}


def test_rejected_rule_counts_per_feed(store: SQLiteStore, clock: Clock) -> None:
    from telmon.model import Problem

    for i in range(3):
        rec = FileRecord(f"/in/bad{i}", "GOES", 5, 1, f"bad{i}", clock.t - 600, None, [], [Problem("not a format")])
        store.record_files([rec], now=clock.t - 600)
    rec = FileRecord("/in/old", "rsync", 5, 1, "old", clock.t - 7200, None, [], [Problem("not a format")])
    store.record_files([rec], now=clock.t - 7200)
    ev = evaluator(store, [{"name": "rejects", "kind": "rejected", "span": "1h", "above": 2}])
    ev.evaluate(clock.t)
    assert {a.subject: a.value for a in db.states(store, rule="rejects")} == {"GOES": 3.0}


def test_a_failing_source_keeps_alerts_as_they_were(store: SQLiteStore, clock: Clock) -> None:
    series = SeriesStore(store)
    series.write([("host.web1.cpu.total", [clock.t - 60], [99.0])], now=clock.t)
    rules = [{"name": "cpu", "kind": "series", "series": "host.*.cpu.total", "above": 90},
             {"name": "silent", "kind": "silence", "after": "1h"}]
    evaluator(store, rules, series=series).evaluate(clock.t)
    assert alert_map(Evaluator(store, parse_rules(rules)), "cpu") == {"host.web1.cpu.total": "firing"}
    blind = evaluator(store, rules, series=None)  # no series store: the cpu rule cannot look
    r = blind.evaluate(clock.advance(60))
    assert "cpu" in r.errors and "series" in r.errors["cpu"]
    assert alert_map(blind, "cpu") == {"host.web1.cpu.total": "firing"}
    assert len(db.notifications(store)) == 1  # no "resolved" for an alert nobody could check


def test_schedule_rules_without_schedule_tables_report_an_error(store: SQLiteStore, clock: Clock) -> None:
    register(store, ["A"], clock.t)
    ev = evaluator(store, [{"name": "complete", "kind": "completeness", "below": 90},
                           {"name": "down", "kind": "status", "status": ["D"]}])
    r = ev.evaluate(clock.t)
    assert set(r.errors) == {"complete", "down"}
    assert "schedule" in r.errors["complete"]


def test_lag_rule_reads_the_services_health(tmp_path: Path, clock: Clock) -> None:
    from telmon.config import Config
    from telmon.health.metrics import install_counters
    from telmon.service import Service

    cfg = Config()
    cfg.set("data_dir", str(tmp_path / "data"))
    service = Service(cfg, now=clock)
    try:
        install_counters(service)
        # the worker is not started: what is submitted waits in its queue
        service.worker.submit(tmp_path / "x.edl", "files")
        ev = Evaluator(service.store, parse_rules([
            {"name": "lagging", "kind": "lag", "metric": "ingest_lag", "above": 300},
            {"name": "queued", "kind": "lag", "metric": "ingest_queue", "above": 0},
        ]), WEBHOOK, service=service)
        ev.evaluate(clock.advance(100))
        assert alert_map(ev, "lagging") == {} and alert_map(ev, "queued") == {"ingest": "firing"}
        ev.evaluate(clock.advance(300))
        lag = {a.subject: a for a in db.states(service.store, rule="lagging")}
        assert lag["ingest"].value == 400 and lag["ingest"].summary == "ingest: ingest_lag 6m (> 300)"
    finally:
        service.close()


def test_rules_of_thousands_of_stations_read_each_source_once(store: SQLiteStore, clock: Clock) -> None:
    codes = [f"S{i:05d}" for i in range(3000)]
    register(store, codes, clock.t - 10 * HOUR)
    rules = [{"name": f"silent-{c}", "kind": "silence", "after": "2h", "subjects": [c]} for c in codes]
    rules.append({"name": "all-silent", "kind": "silence", "after": "5h"})
    r = evaluator(store, rules).evaluate(clock.t)
    assert r.firing == 6000 and r.reads == 2
