"""Job archives written and renamed into a watched tree (inotify and polling), through the
real Service and watcher: exact Redis statistics and one message per archive on the queue."""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path

import pytest

from telmon.sinks import SinkSettings
from tests.jobs.support import (
    AMQP_URL,
    REDIS_URL,
    Job,
    archive,
    drained,
    drop,
    expected_t4tc,
    queue_messages,
    recorded,
    redis_dump,
    start_service,
)
from tests.support import holds, wait_for

JOBS = [
    Job(1001, "alice", 0, 100000, cpu=1888, disk=2004),
    Job(1002, "alice", 0, 25000),
    Job(1003, "alice", 3, 0),
    Job(1004, "bob", 0, 7000, cpu=12, disk=1),
    Job(1005, "bob", 139, 0),
    Job(1006, None, 0, 5000),
    Job(1007, "carol", 0, 0),
    Job(1008, "carol", 1, 0),
    Job(1009, "dave", 0, 31337),
    Job(1010, "bob", 0, 1),
]


@pytest.mark.parametrize("poll", [None, 0.2], ids=["inotify", "poll"])
def test_archives_written_and_renamed_in_are_counted_exactly_and_announced_once(tmp_path: Path, poll, redis_prefix,
                                                                                amqp_queue):
    client, prefix = redis_prefix
    settings = SinkSettings(amqp_url=AMQP_URL, amqp_queue=amqp_queue, redis_url=REDIS_URL,
                            redis_prefix=prefix, redis_arrivals_prefix=prefix + "arrivals/", sink_retry_max=1.0)
    service, sinks, inbox = start_service(tmp_path, settings, poll=poll)
    by_sha = {}
    try:
        for i, j in enumerate(JOBS):
            data = j.archive()
            by_sha[hashlib.sha256(data).hexdigest()] = j
            # half written in place, half renamed in; some in folders made after the watch began
            folder = inbox if i % 3 == 0 else inbox / f"host{i % 3}" / "copilot-output"
            drop(folder, f"job{j.jobid}.tgz", data, rename=i % 2 == 1)
        drop(inbox, "truncated.tgz", archive(b"jobid=1\nexitcode=0\nevents=5\n", extra=4000)[:-30])
        drop(inbox, "notes.txt", b"not an archive\n")
        wait_for(lambda: drained(sinks, len(JOBS)), what="every archive recorded and delivered")
        holds(lambda: drained(sinks, len(JOBS)), 0.3, what="outbox stays drained")
    finally:
        service.close()
    arrivals = recorded(tmp_path / "data" / "telmon.db")
    assert sorted(Path(p).name for _, p, _, _ in arrivals) == sorted(f"job{j.jobid}.tgz" for j in JOBS)

    got = redis_dump(client, prefix)
    assert set(got.pop("_telmon/PROCESSED")) == set(by_sha)
    assert got == expected_t4tc(by_sha, arrivals)
    for user, first_ms in ((k[10:], v) for k, v in got.items() if k.startswith("NEW_USERS/")):
        assert client.pexpiretime(prefix + "NEW_USERS/" + user) == int(first_ms) + 86_400_000

    messages = queue_messages(amqp_queue, expect=len(JOBS))
    ids = [props.message_id for props, _ in messages]
    assert sorted(ids) == sorted(by_sha)  # every archive, none twice
    assert [body["arrival_id"] for _, body in messages] == [a[0] for a in arrivals]  # in arrival order
    for props, body in messages:
        assert props.delivery_mode == 2 and props.content_type == "application/json"
        j = by_sha[body["sha256"]]
        assert body["job"]["jobid"] == j.jobid and body["user"] == j.user
        assert Path(body["path"]).name == f"job{j.jobid}.tgz" and body["size"] == Path(body["path"]).stat().st_size
        assert body["received_at"] == next(a[3] for a in arrivals if a[2] == body["sha256"])


def test_a_corrupt_archive_is_rejected_with_its_reason_and_not_announced(tmp_path: Path, redis_prefix, amqp_queue):
    client, prefix = redis_prefix
    settings = SinkSettings(amqp_url=AMQP_URL, amqp_queue=amqp_queue, redis_url=REDIS_URL, redis_prefix=prefix)
    service, sinks, inbox = start_service(tmp_path, settings)
    try:
        good = Job(7, "erin", 0, 10).archive()
        damaged = bytearray(Job(8, "erin", 0, 10).archive())
        damaged[len(damaged) // 2] ^= 0xFF
        drop(inbox, "good.tgz", good)
        drop(inbox, "damaged.tgz", bytes(damaged))
        drop(inbox, "empty-job.tgz", archive(None))
        wait_for(lambda: service.store.counts()["rejected_files"] >= 2
                 and drained(sinks, 1), what="two rejections and one delivery")
        rejected = {Path(r["path"]).name: r["reason"] for r in service.store.rejected()}
    finally:
        service.close()
    assert rejected["empty-job.tgz"] == "archive holds no ./jobdata member"
    assert rejected["damaged.tgz"].startswith("corrupt archive")
    assert client.hget(prefix, "jobs_completed") == b"1"
    assert [b["job"]["jobid"] for _, b in queue_messages(amqp_queue, expect=1)] == [7]


def test_a_burst_of_archives_in_random_folders_is_complete(tmp_path: Path, redis_prefix, amqp_queue):
    client, prefix = redis_prefix
    settings = SinkSettings(amqp_url=AMQP_URL, amqp_queue=amqp_queue, redis_url=REDIS_URL, redis_prefix=prefix)
    service, sinks, inbox = start_service(tmp_path, settings)
    rng = random.Random(7)
    n = 300
    try:
        for i in range(n):
            drop(inbox / f"d{rng.randrange(20)}", f"{i}.tgz", Job(i, f"u{rng.randrange(30)}", rng.choice([0, 0, 1]), i).archive(),
                 rename=rng.random() < 0.5)
        wait_for(lambda: drained(sinks, n), what=f"{n} archives delivered")
    finally:
        service.close()
    assert client.hget(prefix, "jobs_completed") == str(n).encode()
    assert len({p.message_id for p, _ in queue_messages(amqp_queue, expect=n)}) == n


def test_station_files_of_a_configured_feed_go_through_the_same_sinks(tmp_path: Path, redis_prefix, amqp_queue):
    from tests.support import SAMPLES

    client, prefix = redis_prefix
    settings = SinkSettings(amqp_url=AMQP_URL, amqp_queue=amqp_queue, amqp_feeds=["usgs"], redis_url=REDIS_URL,
                            redis_prefix=prefix + "t4tc/", redis_arrivals_prefix=prefix + "arrivals/",
                            redis_feeds=["usgs"])
    service, sinks, inbox = start_service(tmp_path, settings, feed="usgs")
    edl = sorted((SAMPLES / "telmon").glob("*.edl"))
    try:
        for f in edl:
            drop(inbox, f.name, f.read_bytes())
        wait_for(lambda: drained(sinks, len(edl)), what="station files delivered")
        stations = {s["code"] for s in service.store.stations()}
    finally:
        service.close()
    messages = queue_messages(amqp_queue, expect=len(edl))
    assert sorted(Path(b["path"]).name for _, b in messages) == sorted(f.name for f in edl)
    assert {b["format"] for _, b in messages} == {"edl"} and all(b["entries"] > 0 for _, b in messages)
    counts = redis_dump(client, prefix + "arrivals/")
    assert counts[""]["arrivals"] == str(len(edl))
    assert int(counts[""]["entries"]) == sum(b["entries"] for _, b in messages)
    assert set(counts["PER_STATION/arrivals"]) == set(stations)


def test_a_one_shot_ingest_leaves_rows_that_a_running_telmon_delivers(tmp_path: Path, redis_prefix, amqp_queue):
    from telmon.config import load_config
    from telmon.service import Service
    from telmon.sinks import install

    client, prefix = redis_prefix
    cfg = load_config(env={})
    cfg.set("data_dir", str(tmp_path / "data"))
    service = Service(cfg)  # as `telmon ingest` builds it: never started
    try:
        sinks = install(service, SinkSettings(amqp_url=AMQP_URL, amqp_queue=amqp_queue, redis_url=REDIS_URL,
                                              redis_prefix=prefix), start=False)
        paths = [drop(tmp_path / "in", f"{i}.tgz", Job(i, "zoe", 0, 10).archive()) for i in range(5)]
        service.ingestor.ingest([(p, "nfs") for p in paths])
        assert {r["sink"]: r["pending"] for r in sinks.outbox.status(now=time.time())} == {"amqp": 5, "redis": 5}
        sinks.start()
        wait_for(lambda: drained(sinks, 5), what="the waiting rows delivered")
    finally:
        service.close()
    assert client.hget(prefix, "jobs_completed") == b"5"
    assert len(queue_messages(amqp_queue, expect=5)) == 5


def test_messages_go_through_a_configured_exchange_and_routing_key(tmp_path: Path, amqp_queue):
    from tests.jobs.support import amqp_connection

    exchange = amqp_queue + "-exchange"
    settings = SinkSettings(amqp_url=AMQP_URL, amqp_queue=amqp_queue, amqp_exchange=exchange,
                            amqp_exchange_type="topic", amqp_routing_key="t4tc.jobs")
    service, sinks, inbox = start_service(tmp_path, settings)
    try:
        drop(inbox, "a.tgz", Job(1, "yan", 0, 3).archive())
        wait_for(lambda: drained(sinks, 1), what="the message confirmed")
    finally:
        service.close()
        conn = amqp_connection()
        try:
            [(props, body)] = queue_messages(amqp_queue, expect=1)
            conn.channel().exchange_delete(exchange)
        finally:
            conn.close()
    assert body["job"]["jobid"] == 1 and props.message_id == body["sha256"]


def test_the_old_non_durable_queue_is_reported_and_rows_wait_until_it_is_gone(tmp_path: Path, amqp_queue):
    from tests.jobs.support import amqp_connection

    conn = amqp_connection()
    try:
        conn.channel().queue_declare(amqp_queue, durable=False)  # as monitor.py declared t4tc_monitor
    finally:
        conn.close()
    settings = SinkSettings(amqp_url=AMQP_URL, amqp_queue=amqp_queue, sink_retry_max=0.2)
    service, sinks, inbox = start_service(tmp_path, settings)
    try:
        drop(inbox, "a.tgz", Job(1, "yan", 0, 3).archive())
        wait_for(lambda: "non-durable" in (sinks.relays["amqp"].stats.last_error or ""), what="the hint")
        wait_for(lambda: service.store.counts()["arrivals"] == 1, what="the arrival recorded")
        tries = sinks.relays["amqp"].stats.failures
        wait_for(lambda: sinks.relays["amqp"].stats.failures >= tries + 2, what="the relay trying again and failing")
        [status] = sinks.outbox.status(now=time.time())
        assert status["pending"] == 1 and status["state"] == "failing" and "PRECONDITION_FAILED" in status["last_error"]
        conn = amqp_connection()
        try:
            conn.channel().queue_delete(amqp_queue)
        finally:
            conn.close()
        wait_for(lambda: drained(sinks, 1), what="delivery once the old queue is gone")
    finally:
        service.close()
    assert len(queue_messages(amqp_queue, expect=1)) == 1
