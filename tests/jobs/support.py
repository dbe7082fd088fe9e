"""Helpers for the job-archive tests: archives built from the real jobdata sample, the real
Redis and RabbitMQ on localhost (a test fails under CI=true when one is unreachable, and skips
with the reason elsewhere), and per-test key prefixes and queues that are cleaned up."""

from __future__ import annotations

import io
import os
import tarfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import SAMPLES

JOBDATA = SAMPLES / "test4theory" / "jobdata"
REDIS_URL = os.environ.get("TELMON_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("TELMON_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def need_service(name: str, reason: str) -> None:
    """A service the test needs is unreachable: fail under CI (it must be there), else skip."""
    message = f"{name} is not reachable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: .ci/services.sh should have started it)")
    pytest.skip(message)


def jobdata(**changes: Any) -> bytes:
    """The real sample's jobdata with some keys changed (None removes a key), same order."""
    lines = JOBDATA.read_text().splitlines()
    out, seen = [], set()
    for line in lines:
        key = line.split("=", 1)[0] if "=" in line else None
        if key is not None and key in changes:
            seen.add(key)
            if changes[key] is None:
                continue
            line = f"{key}={changes[key]}"
        out.append(line)
    out += [f"{k}={v}" for k, v in changes.items() if k not in seen and v is not None]
    return ("\n".join(out) + "\n").encode()


def archive(data: bytes | None = None, *, extra: int = 0, mtime: float = 1_403_170_860, name: str = "./jobdata") -> bytes:
    """A .tgz laid out like myTAR.tgz (SOURCE.txt): a few members, then ./jobdata."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        members = [("./_wrapper_.sh", b"#!/bin/sh\nexec ./runRivet.sh\n"), ("./stdout", b"")]
        if extra:
            members.append(("./runRivet.log", b"rivet progress line\n" * (extra // 20)))
        if data is not None:
            members.append((name, data))
        for member, content in members:
            info = tarfile.TarInfo(member)
            info.size, info.mtime = len(content), int(mtime)
            tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def job(jobid: int, user: str | None, exitcode: int, events: int | None, cpu: int = 100, disk: int = 50) -> bytes:
    """An archive for one job of ``user`` (USER_ID; None: an anonymous job)."""
    # BOINC_USERID removed, so that a job without USER_ID has no user at all
    return archive(jobdata(jobid=jobid, USER_ID=user, BOINC_USERID=None, exitcode=exitcode,
                           events=events, cpuusage=cpu, diskusage=disk))


def drop(folder: Path, name: str, content: bytes, *, rename: bool = False) -> Path:
    """Write an archive in place, or (rename=True) as a dot-file renamed in, as rsync does."""
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / name
    if rename:
        tmp = folder / f".{name}.part"
        tmp.write_bytes(content)
        os.rename(tmp, dest)
    else:
        dest.write_bytes(content)
    return dest


def unique(stem: str) -> str:
    return f"telmon-test-{stem}-{uuid.uuid4().hex[:10]}"


# --- Redis ------------------------------------------------------------------------------------
def redis_client() -> Any:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        need_service("Redis", f"{REDIS_URL}: {exc}")
    return client


def redis_cleanup(client: Any, prefix: str) -> None:
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)


def redis_dump(client: Any, prefix: str) -> dict[str, Any]:
    """Every key under ``prefix`` (prefix stripped) with its value, in plain Python types."""
    out: dict[str, Any] = {}
    for raw in client.scan_iter(match=prefix + "*", count=1000):
        key = raw.decode()
        kind = client.type(raw).decode()
        if kind == "hash":
            value: Any = {k.decode(): v.decode() for k, v in client.hgetall(raw).items()}
        elif kind == "zset":
            value = {m.decode(): s for m, s in client.zrange(raw, 0, -1, withscores=True)}
        elif kind == "set":
            value = {m.decode() for m in client.smembers(raw)}
        else:
            value = client.get(raw).decode()
        out[key[len(prefix):]] = value
    return out


# --- RabbitMQ ---------------------------------------------------------------------------------
def amqp_connection() -> Any:
    import pika
    import pika.exceptions

    try:
        return pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPError as exc:
        need_service("RabbitMQ", f"{AMQP_URL}: {exc!r}")
        raise


def queue_messages(queue: str, *, expect: int, timeout: float = 20.0, idle: float = 0.5) -> list[tuple[Any, dict[str, Any]]]:
    """Consume (and ack) messages from ``queue`` until ``expect`` arrived and none more came
    for ``idle`` s, or ``timeout``; returns (properties, JSON body) pairs in queue order."""
    import orjson

    conn = amqp_connection()
    got: list[tuple[Any, dict[str, Any]]] = []
    try:
        ch = conn.channel()
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                if len(got) >= expect and time.monotonic() - last >= idle:
                    break
                time.sleep(0.02)
                continue
            got.append((props, orjson.loads(body)))
            last = time.monotonic()
    finally:
        conn.close()
    return got


def delete_queue(queue: str) -> None:
    conn = amqp_connection()
    try:
        conn.channel().queue_delete(queue)
    finally:
        conn.close()


def queue_depth(queue: str) -> int:
    conn = amqp_connection()
    try:
        return conn.channel().queue_declare(queue, durable=True, passive=True).method.message_count
    finally:
        conn.close()


# --- the spine without the wiring (until telmon.formats lists jobarchive itself) --------------
def register_jobarchive(monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    """Make telmon.formats try jobarchive first if it does not list it yet."""
    from telmon import formats
    from telmon.formats import jobarchive

    if any(f.NAME == jobarchive.NAME for f in formats.all_formats()):
        return
    original = formats.all_formats

    def all_formats() -> list[Any]:
        return [jobarchive, *original()]

    if monkeypatch is not None:
        monkeypatch.setattr(formats, "all_formats", all_formats)
    else:
        formats.all_formats = all_formats  # type: ignore[assignment]


# --- the running spine ------------------------------------------------------------------------
def start_service(tmp_path: Path, settings: Any, *, poll: float | None = None, feed: str = "nfs",
                  settle: float = 0.1) -> tuple[Any, Any, Path]:
    """A real telmon Service watching tmp_path/inbox (inotify, or polling every ``poll`` s),
    with the sinks installed; returns (service, sinks, inbox)."""
    from telmon.config import WatchSpec, load_config
    from telmon.service import Service
    from telmon.sinks import install

    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    cfg = load_config(env={})
    cfg.set("data_dir", str(tmp_path / "data"))
    cfg.set("settle", settle)
    service = Service(cfg)
    # add_watch before start(): Service.start() would start a watcher listed in cfg.watch twice
    service.add_watch(WatchSpec(str(inbox), feed, poll))
    sinks = install(service, settings)
    service.start()
    return service, sinks, inbox


def drained(sinks: Any, arrivals: int) -> bool:
    """True once ``arrivals`` arrivals are recorded and no sink has rows waiting."""
    counts = sinks.outbox.store.counts()
    return counts["arrivals"] >= arrivals and all(r["pending"] == 0 for r in sinks.outbox.status(now=time.time()))


def recorded(db: Path) -> list[tuple[int, str, str, float]]:
    """(arrival id, path, sha256, received_at) of every arrival, in arrival order."""
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(
            "SELECT a.id, f.path, f.sha256, a.received_at FROM arrivals a JOIN files f ON f.id = a.file_id ORDER BY a.id"
        ).fetchall()
    finally:
        con.close()


@dataclass(frozen=True)
class Job:
    jobid: int
    user: str | None
    exitcode: int
    events: int
    cpu: int = 100
    disk: int = 50

    def archive(self) -> bytes:
        return job(self.jobid, self.user, self.exitcode, self.events if self.exitcode == 0 else None,
                   self.cpu, self.disk)


def expected_t4tc(jobs_by_sha: dict[str, Job], arrivals: list[tuple[int, str, str, float]], *,
                  window: float = 600.0) -> dict[str, Any]:
    """What the Redis layout must hold after these arrivals (all within the rate window), as
    redis_dump gives it, computed independently of the relay."""
    h = {"jobs_completed": 0, "events": 0, "jobs_failed": 0}
    per: dict[str, dict[str, float]] = {k: {} for k in ("jobs_completed", "events", "jobs_failed", "cpuusage", "diskusage")}
    buffer: dict[str, float] = {}
    new_users: dict[str, str] = {}

    def add(kind: str, user: str, n: float) -> None:
        per[kind][user] = per[kind].get(user, 0.0) + n

    for _aid, _path, sha, received in arrivals:
        j = jobs_by_sha[sha]
        ms = int(round(received * 1000))
        h["jobs_completed"] += 1
        if j.user:
            add("jobs_completed", j.user, 1)
            add("cpuusage", j.user, j.cpu)
            add("diskusage", j.user, j.disk)
            new_users.setdefault(j.user, str(ms))
        if j.exitcode == 0:
            h["events"] += j.events
            if j.user:
                add("events", j.user, j.events)
            buffer[f"{j.jobid}_{j.events}_{sha[:16].upper()}"] = float(ms)
        else:
            h["jobs_failed"] += 1
            if j.user:
                add("jobs_failed", j.user, 1)
    out: dict[str, Any] = {"": {**{k: str(v) for k, v in h.items()}, "event_rate": "%.17g" % (h["events"] / window)}}
    for kind, values in per.items():
        if values:
            out[f"PER_USER/{kind}"] = values
    if buffer:
        out["EVENT_BUFFER"] = buffer
        out["_telmon/EVENT_BUFFER_SUM"] = str(h["events"])
    if new_users:
        out["USERS"] = set(new_users)
    out.update({f"NEW_USERS/{u}": v for u, v in new_users.items()})
    return out
