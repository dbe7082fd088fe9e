"""The outbox on a real SQLite store: rows commit with their arrival, routing by format and
feed, order, status, and the Redis relay's crash window (no broker needed for most)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from telmon.errors import ConfigError
from telmon.ingest.pipeline import Ingestor
from telmon.sinks import SinkSettings, install
from telmon.sinks.outbox import Outbox, Route
from telmon.store.sqlite import SQLiteStore
from tests.jobs.support import archive, drop, job, jobdata
from tests.support import SAMPLES

EDL = SAMPLES / "telmon"


@pytest.fixture
def outbox(store: SQLiteStore) -> Outbox:
    box = Outbox(store)
    store.record_hooks.append(box.hook([Route("amqp", frozenset({"jobarchive"})),
                                        Route("redis", frozenset({"jobarchive"}), frozenset({"usgs"}))]))
    return box


def test_each_archive_gets_one_row_per_sink_with_its_summary(tmp_path: Path, store: SQLiteStore, outbox: Outbox):
    inbox = tmp_path / "in"
    paths = [drop(inbox, f"j{i}.tgz", job(500 + i, "alice", 0, 10 * i)) for i in range(3)]
    drop(inbox, "bad.tgz", archive(None))
    Ingestor(store, now=lambda: 1000.0).ingest([(p, "nfs") for p in [*paths, inbox / "bad.tgz"]])
    amqp = outbox.pending("amqp")
    assert [r.body()["path"] for r in amqp] == [str(p) for p in paths]  # in arrival order; the bad one is not announced
    assert len(outbox.pending("redis")) == 3
    body = amqp[1].body()
    assert body["id"] == body["sha256"] == amqp[1].msg_id
    assert body["job"]["jobid"] == 501 and body["job"]["events"] == 10 and body["user"] == "alice"
    assert body["size"] == paths[1].stat().st_size and body["feed"] == "nfs" and body["format"] == "jobarchive"
    assert "BOINC_AUTHENTICATOR" not in body["job"] and "0" * 32 not in str(body)  # the account key


def test_rows_and_arrivals_commit_together_or_not_at_all(tmp_path: Path, store: SQLiteStore, outbox: Outbox):
    def broken_hook(*_args):
        raise RuntimeError("disk full, say")

    store.record_hooks.append(broken_hook)
    path = drop(tmp_path / "in", "j.tgz", job(1, "u", 0, 5))
    with pytest.raises(RuntimeError):
        Ingestor(store).ingest([(path, "nfs")])
    assert store.counts()["arrivals"] == 0 and outbox.pending("amqp") == []
    store.record_hooks.remove(broken_hook)
    Ingestor(store).ingest([(path, "nfs")])
    assert store.counts()["arrivals"] == 1 and len(outbox.pending("amqp")) == 1


def test_station_files_are_routed_by_feed(tmp_path: Path, store: SQLiteStore, outbox: Outbox):
    edl = sorted(EDL.glob("*.edl"))[0]
    Ingestor(store).ingest([(edl, "usgs")])
    assert outbox.pending("amqp") == []  # only job archives go to AMQP here
    [row] = outbox.pending("redis")
    body = row.body()
    assert body["format"] == "edl" and body["entries"] > 0 and body["station"]


def test_delivered_rows_go_and_ids_never_go_back(tmp_path: Path, store: SQLiteStore, outbox: Outbox):
    inbox = tmp_path / "in"
    Ingestor(store).ingest([(drop(inbox, "a.tgz", job(1, "u", 0, 1)), "nfs")])
    [first] = outbox.pending("amqp")
    assert outbox.delivered("amqp", [first.id], now=5.0) == 1
    Ingestor(store).ingest([(drop(inbox, "b.tgz", job(2, "u", 0, 1)), "nfs")])
    [second] = outbox.pending("amqp")
    assert second.id > first.id  # AUTOINCREMENT: a relay resuming "after the last id sent" skips nothing
    status = {r["sink"]: r for r in outbox.status(now=10.0)}
    assert status["amqp"]["pending"] == 1 and status["amqp"]["delivered"] == 1 and status["amqp"]["state"] == "ok"
    outbox.failed("amqp", "ConnectionRefusedError", now=11.0)
    status = {r["sink"]: r for r in outbox.status(now=12.0)}
    assert status["amqp"]["state"] == "failing" and status["amqp"]["last_error"] == "ConnectionRefusedError"


def test_install_refuses_a_second_outbox_on_the_same_store(tmp_path: Path, store: SQLiteStore, outbox: Outbox):
    class FakeService:  # only the attributes install() reads; no broker is contacted for a refusal
        def __init__(self) -> None:
            self.store = store
            self.stop = lambda: None

    with pytest.raises(ConfigError, match="already installed"):
        install(FakeService(), SinkSettings(redis_url="redis://127.0.0.1:1/0"))
    assert install(FakeService(), SinkSettings()) is None  # no URL set: no sink, no hook


def test_settings_come_from_a_config_mapping_with_defaults_for_the_rest():
    s = SinkSettings.from_config({"amqp_url": "amqp://x", "redis_feeds": "usgs, goes", "amqp_window": "64"})
    assert s.amqp_url == "amqp://x" and s.redis_feeds == ["usgs", "goes"] and s.amqp_window == 64
    assert s.amqp_queue == "t4tc_monitor" and s.redis_prefix == "T4TC_MONITOR/TOTAL/"
    with pytest.raises(ConfigError):
        SinkSettings.from_config({"redis_rate_window": 0})


def test_the_redis_relay_re_sends_after_a_crash_without_counting_twice(tmp_path: Path, store: SQLiteStore,
                                                                        outbox: Outbox, redis_prefix):
    from telmon.sinks.redis import RedisLayout, RedisRelay, RedisStats

    client, prefix = redis_prefix
    stats = RedisStats(client, RedisLayout(t4tc_prefix=prefix))
    inbox = tmp_path / "in"
    Ingestor(store).ingest([(drop(inbox, f"{i}.tgz", job(i, "u", 0, 100)), "nfs") for i in range(10)])
    rows = outbox.pending("redis")
    # the relay applied the batch, then died before deleting its rows:
    assert stats.apply([r.body() for r in rows], now=1.0) == 10
    relay = RedisRelay(outbox, stats)
    assert relay.drain_once() == 10
    assert relay.stats.skipped == 10 and outbox.pending("redis") == []
    assert client.hget(prefix, "jobs_completed") == b"10" and client.hget(prefix, "events") == b"1000"


def test_a_large_jobdata_integer_stays_text(tmp_path: Path, store: SQLiteStore, outbox: Outbox):
    path = drop(tmp_path / "in", "big.tgz", archive(jobdata(seed=2**70)))
    [res] = Ingestor(store).ingest([(path, "nfs")])
    assert res.status == "ok"
    assert outbox.pending("amqp")[0].body()["job"]["seed"] == str(2**70)


def test_every_sink_setting_is_documented_in_docs_jobs_md():
    from telmon.sinks import SETTINGS

    text = (Path(__file__).resolve().parents[2] / "docs" / "jobs.md").read_text()
    for name, default, _help, typ in SETTINGS:
        assert f"| `{name}` | `{default!r}` |" in text, f"{name} is missing from docs/jobs.md"
        assert isinstance(default, typ)
    assert {f.name for f in dataclasses.fields(SinkSettings)} == {s[0] for s in SETTINGS}
