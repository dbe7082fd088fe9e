"""The Redis statistics script on the real Redis: exact values, idempotence, event_rate."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import redis

from telmon.sinks.redis import RedisLayout, RedisStats

NOW = 1_800_000_000.0


def msg(jobid: int, user: str | None, exitcode: int, events: int | None, *, at: float = NOW,
        cpu: Any = 100, disk: Any = 50) -> dict[str, Any]:
    """An outbox message body of a job archive (what the relay hands the script)."""
    sha = hashlib.sha256(f"{jobid}".encode()).hexdigest()
    job = {"jobid": jobid, "exitcode": exitcode, "cpuusage": cpu, "diskusage": disk}
    if events is not None:
        job["events"] = events
    return {"id": sha, "sha256": sha, "received_at": at, "format": "jobarchive", "user": user, "job": job}


def member(m: dict[str, Any]) -> str:
    return f"{m['job']['jobid']}_{m['job'].get('events', 0) if m['job']['exitcode'] == 0 else 0}_{m['sha256'][:16].upper()}"


@pytest.fixture
def stats(redis_prefix):
    client, prefix = redis_prefix
    layout = RedisLayout(t4tc_prefix=prefix + "T4TC_MONITOR/TOTAL/", arrivals_prefix=prefix + "arrivals/")
    s = RedisStats(client, layout)
    yield s, client, layout.t4tc_prefix
    s.close()


def dump(client: redis.Redis, prefix: str) -> dict[str, Any]:
    from tests.jobs.support import redis_dump

    return redis_dump(client, prefix)


def test_a_known_set_of_jobs_gives_exact_values_in_the_old_layout(stats):
    s, client, p = stats
    jobs = [
        msg(1, "alice", 0, 1000, cpu=10, disk=5),
        msg(2, "alice", 0, 2500, cpu=20, disk=7),
        msg(3, "alice", 3, None, cpu=1, disk=1),
        msg(4, "bob", 0, 400, cpu="12.5", disk="n/a"),  # a non-number is not added (RepresentsFloat)
        msg(5, "bob", 139, None),
        msg(6, None, 0, 700),  # no user: counted in the totals only
        msg(7, "carol", 0, 0),
    ]
    assert s.apply(jobs, now=NOW) == 7
    got = dump(client, p)
    assert got[""] == {"jobs_completed": "7", "events": str(1000 + 2500 + 400 + 700), "jobs_failed": "2",
                       "event_rate": "%.17g" % ((1000 + 2500 + 400 + 700) / 600)}
    assert got["PER_USER/jobs_completed"] == {"alice": 3.0, "bob": 2.0, "carol": 1.0}
    assert got["PER_USER/events"] == {"alice": 3500.0, "bob": 400.0, "carol": 0.0}
    assert got["PER_USER/jobs_failed"] == {"alice": 1.0, "bob": 1.0}
    assert got["PER_USER/cpuusage"] == {"alice": 31.0, "bob": 112.5, "carol": 100.0}
    assert got["PER_USER/diskusage"] == {"alice": 13.0, "bob": 50.0, "carol": 50.0}
    assert got["EVENT_BUFFER"] == {member(m): NOW * 1000 for m in jobs if m["job"]["exitcode"] == 0}
    assert got["USERS"] == {"alice", "bob", "carol"}
    for user in ("alice", "bob", "carol"):
        assert got[f"NEW_USERS/{user}"] == str(int(NOW * 1000))
        # the day runs from the arrival; the key expires at arrival + 1 day exactly
        assert client.pexpiretime(p + f"NEW_USERS/{user}") == int(NOW * 1000) + 86_400_000
    assert got["_telmon/EVENT_BUFFER_SUM"] == "4600"
    assert set(got["_telmon/PROCESSED"]) == {m["id"] for m in jobs}
    assert set(got) == {"", "PER_USER/jobs_completed", "PER_USER/events", "PER_USER/jobs_failed",
                        "PER_USER/cpuusage", "PER_USER/diskusage", "EVENT_BUFFER", "USERS", "NEW_USERS/alice",
                        "NEW_USERS/bob", "NEW_USERS/carol", "_telmon/EVENT_BUFFER_SUM", "_telmon/PROCESSED"}


def test_a_new_user_ttl_counts_from_the_arrival_and_a_known_user_is_not_new_again(stats):
    s, client, p = stats
    s.apply([msg(1, "dave", 0, 10, at=NOW - 3600)], now=NOW)
    assert client.pexpiretime(p + "NEW_USERS/dave") == int((NOW - 3600 + 86400) * 1000)
    client.delete(p + "NEW_USERS/dave")  # as if the day had passed
    s.apply([msg(2, "dave", 0, 10)], now=NOW)
    assert not client.exists(p + "NEW_USERS/dave")


def test_applying_the_same_archives_again_counts_nothing(stats):
    s, client, p = stats
    jobs = [msg(i, f"u{i % 3}", i % 2, 100 * i) for i in range(20)]
    assert s.apply(jobs[:12], now=NOW) == 12
    before = dump(client, p)
    # a relay that crashed after the script ran but before deleting its outbox rows re-sends them
    assert s.apply(jobs[:12], now=NOW) == 0
    assert dump(client, p) == before
    assert s.apply(jobs, now=NOW) == 8
    assert client.hget(p, "jobs_completed") == b"20"


def test_event_rate_on_equal_timestamps_is_events_over_the_window(stats):
    s, client, p = stats
    # monitor.py: skipped the first job (zrange from 1) and divided by max - min = 0 here
    s.apply([msg(i, "u", 0, 300) for i in range(5)], now=NOW)
    assert float(client.hget(p, "event_rate")) == pytest.approx(1500 / 600)
    s.apply([msg(99, "u", 0, 600)], now=NOW)
    assert float(client.hget(p, "event_rate")) == pytest.approx(2100 / 600)


def test_a_single_job_has_a_rate_and_no_jobs_have_rate_zero(stats):
    s, client, p = stats
    s.refresh_rate(now=NOW)
    assert float(client.hget(p, "event_rate")) == 0.0
    s.apply([msg(1, "u", 0, 1200)], now=NOW)
    assert float(client.hget(p, "event_rate")) == pytest.approx(2.0)


def test_event_rate_covers_the_last_ten_minutes_only_and_decays(stats):
    s, client, p = stats
    s.apply([msg(1, "u", 0, 6000, at=NOW - 900), msg(2, "u", 0, 600, at=NOW - 300), msg(3, "u", 0, 60, at=NOW)],
            now=NOW)
    assert float(client.hget(p, "event_rate")) == pytest.approx(660 / 600)  # the job of 15 min ago is out
    assert client.zcard(p + "EVENT_BUFFER") == 2
    s.refresh_rate(now=NOW + 301)  # 300 s later the job of NOW - 300 leaves the window
    assert float(client.hget(p, "event_rate")) == pytest.approx(60 / 600)
    s.refresh_rate(now=NOW + 600)  # the window is (now - 600, now]: NOW itself is out now
    assert float(client.hget(p, "event_rate")) == 0.0
    assert client.zcard(p + "EVENT_BUFFER") == 0
    assert client.get(p + "_telmon/EVENT_BUFFER_SUM") == b"0"


def test_a_buffer_left_by_the_old_daemon_is_summed_once(stats):
    s, client, p = stats
    client.zadd(p + "EVENT_BUFFER", {"11862984_100000_ABCDEFGHIJKLMNOP": NOW * 1000 - 1000,
                                     "11862985_20000_QRSTUVWXYZ012345": NOW * 1000 - 2000})
    s.apply([msg(1, "u", 0, 30000)], now=NOW)
    assert float(client.hget(p, "event_rate")) == pytest.approx(150000 / 600)


def test_a_key_of_the_wrong_type_refuses_the_batch_before_writing_anything(stats):
    s, client, p = stats
    client.set(p + "PER_USER/cpuusage", "not a sorted set")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE telmon"):
        s.apply([msg(1, "u", 0, 10), msg(2, "v", 1, None)], now=NOW)
    assert set(dump(client, p)) == {"PER_USER/cpuusage"}  # nothing half-applied, nothing marked done
    client.delete(p + "PER_USER/cpuusage")
    assert s.apply([msg(1, "u", 0, 10), msg(2, "v", 1, None)], now=NOW) == 2


def test_other_arrivals_are_counted_per_station_and_feed(redis_prefix):
    client, prefix = redis_prefix
    s = RedisStats(client, RedisLayout(t4tc_prefix=prefix + "t4tc/", arrivals_prefix=prefix + "arrivals/"))
    edl = [{"id": f"e{i}", "sha256": "0" * 64, "received_at": NOW + i, "format": "edl", "feed": "usgs",
            "station": f"S{i % 2}", "entries": 24} for i in range(5)]
    assert s.apply(edl, now=NOW + 10) == 5
    assert s.apply(edl, now=NOW + 10) == 0
    got = dump(client, prefix + "arrivals/")
    assert got[""] == {"arrivals": "5", "entries": "120"}
    assert got["PER_STATION/arrivals"] == {"S0": 3.0, "S1": 2.0}
    assert got["PER_STATION/entries"] == {"S0": 72.0, "S1": 48.0}
    assert got["PER_FEED/arrivals"] == {"usgs": 5.0}
    assert got["LAST_ARRIVAL"] == {"S0": (NOW + 4) * 1000, "S1": (NOW + 3) * 1000}
    assert not list(client.scan_iter(match=prefix + "t4tc/*"))  # no event_rate for a layout not in use
