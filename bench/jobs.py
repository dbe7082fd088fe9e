"""Benchmark: Test4Theory job archives landing in a watched tree, end to end.

A writer process drops N small job archives (built from the real jobdata sample) into a tree
watched by a real telmon Service (inotify, SQLite store, the sinks installed). Measured from
the first write until every archive is counted in Redis AND confirmed by RabbitMQ (the outbox
empty): archives/s. In the same run, the old daemon's per-file work on the same files — open
the tar, parse ./jobdata, one Redis round-trip per key, as monitor.py did — is timed as the
baseline, and the ratio printed. Needs Redis on 127.0.0.1:6379 and RabbitMQ on :5672.

    python bench/jobs.py [--archives 10000] [--json bench/out/jobs.json]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pika  # noqa: E402
import redis  # noqa: E402

from telmon.config import WatchSpec, load_config  # noqa: E402
from telmon.service import Service  # noqa: E402
from telmon.sinks import SinkSettings, install  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
JOBDATA = ROOT / "tests" / "data" / "samples" / "test4theory" / "jobdata"
REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
FOLDERS = 20


def ensure_format() -> None:
    """Until telmon.formats lists jobarchive itself, try it first."""
    from telmon import formats
    from telmon.formats import jobarchive

    if all(f.NAME != jobarchive.NAME for f in formats.all_formats()):
        original = formats.all_formats
        formats.all_formats = lambda: [jobarchive, *original()]  # type: ignore[assignment]


def make_archive(template: list[str], i: int) -> bytes:
    values = {"jobid": str(20_000_000 + i), "USER_ID": f"volunteer{i % 50}", "exitcode": "0" if i % 10 else "1",
              "events": str(1000 + i % 997), "cpuusage": str(100 + i % 300), "diskusage": str(50 + i % 70)}
    lines = []
    for line in template:
        key = line.split("=", 1)[0]
        lines.append(f"{key}={values.pop(key)}" if key in values else line)
    lines += [f"{k}={v}" for k, v in values.items()]
    data = ("\n".join(lines) + "\n").encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, content in (("./stdout", b""), ("./jobdata", data)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(content), 1_403_170_860
            tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def writer(inbox: str, n: int, ready: Any, go: Any) -> None:
    """Build the archives first, then write them as fast as it can (every other one renamed in)."""
    template = JOBDATA.read_text().splitlines()
    archives = [make_archive(template, i) for i in range(n)]
    ready.set()
    go.wait()
    for i, data in enumerate(archives):
        folder = os.path.join(inbox, f"host{i % FOLDERS}")
        dest = os.path.join(folder, f"job{i:06d}.tgz")
        if i % 2:
            tmp = os.path.join(folder, f".job{i:06d}.tgz.part")
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.rename(tmp, dest)
        else:
            with open(dest, "wb") as fh:
                fh.write(data)


def bench_telmon(n: int, work: Path, prefix: str, queue: str, client: redis.Redis) -> dict[str, Any]:
    inbox = work / "inbox"
    for k in range(FOLDERS):
        (inbox / f"host{k}").mkdir(parents=True)
    cfg = load_config(env={})
    cfg.set("data_dir", str(work / "data"))
    service = Service(cfg)
    service.add_watch(WatchSpec(str(inbox), "nfs"))
    sinks = install(service, SinkSettings(amqp_url=AMQP_URL, amqp_queue=queue, redis_url=REDIS_URL,
                                          redis_prefix=prefix))
    assert sinks is not None
    service.start()
    ready, go = mp.Event(), mp.Event()
    proc = mp.Process(target=writer, args=(str(inbox), n, ready, go))
    proc.start()
    try:
        ready.wait()
        t0 = time.perf_counter()
        go.set()
        amqp, rrelay = sinks.relays["amqp"], sinks.relays["redis"]
        deadline = time.monotonic() + 600
        stages: dict[str, float] = {}
        while True:
            # cheap in-process counters while it runs (polling Redis and the outbox every few ms
            # would take CPU from what is measured); the real check once they say done
            for stage, done in (("written", not proc.is_alive()), ("recorded", service.worker.stats.arrivals >= n),
                                ("redis", rrelay.stats.delivered >= n), ("amqp", amqp.stats.confirmed >= n)):
                if done and stage not in stages:
                    stages[stage] = round(time.perf_counter() - t0, 3)
            if ("redis" in stages and "amqp" in stages and int(client.hget(prefix, "jobs_completed") or 0) >= n
                    and sinks.outbox.status(now=time.time())[0]["pending"] == 0):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out: {rrelay.stats.delivered} counted, {amqp.stats.confirmed} confirmed of {n}")
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        proc.join()
    finally:
        service.close()
    return {"seconds": elapsed, "archives_per_s": n / elapsed, "stages_s": stages,
            "redis_batches": sinks.relays["redis"].stats.batches,
            "amqp_published": amqp.stats.published, "amqp_confirmed": amqp.stats.confirmed}


def old_per_file(path: str, r: redis.Redis, base: str) -> None:
    """monitor.py's work for one archive (getJobData + update_t4tc_analytics_on_redis), with one
    Redis round-trip per key and no publishing (it published only when Redis failed)."""
    with tarfile.open(path, "r") as t:
        data = t.extractfile("./jobdata").read().decode()  # type: ignore[union-attr]
    d: dict[str, Any] = {}
    for k in data.split("\n"):
        if k.strip():
            p = k.split("=")
            d[p[0]] = int(p[1]) if p[1].isdigit() else p[1]
    r.hincrby(base, "jobs_completed", 1)
    user = d.get("USER_ID")
    if user:
        r.zincrby(base + "PER_USER/jobs_completed", 1, user)
        r.zincrby(base + "PER_USER/cpuusage", float(d["cpuusage"]), user)
        r.zincrby(base + "PER_USER/diskusage", float(d["diskusage"]), user)
    if d["exitcode"] == 0:
        r.hincrby(base, "events", d["events"])
        if user:
            r.zincrby(base + "PER_USER/events", d["events"], user)
        r.zadd(base + "EVENT_BUFFER", {f"{d['jobid']}_{d['events']}_{uuid.uuid4().hex[:16]}": int(time.time() * 1000)})
    else:
        r.hincrby(base, "jobs_failed", 1)
        if user:
            r.zincrby(base + "PER_USER/jobs_failed", 1, user)
    if user:
        before = r.scard(base + "USERS")
        r.sadd(base + "USERS", user)
        if r.scard(base + "USERS") > before:
            r.set(base + "NEW_USERS/" + user, 1)
            r.expire(base + "NEW_USERS/" + user, 86400)


def bench_old(inbox: Path, r: redis.Redis, prefix: str) -> dict[str, Any]:
    paths = sorted(str(p) for p in inbox.rglob("*.tgz"))
    t0 = time.perf_counter()
    for p in paths:
        old_per_file(p, r, prefix)
    elapsed = time.perf_counter() - t0
    return {"seconds": elapsed, "archives_per_s": len(paths) / elapsed, "archives": len(paths)}


def cleanup(client: redis.Redis, prefixes: list[str], queue: str) -> int:
    for prefix in prefixes:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        ch = conn.channel()
        depth = ch.queue_declare(queue, durable=True, passive=True).method.message_count
        ch.queue_delete(queue)
    finally:
        conn.close()
    return depth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archives", type=int, default=10_000)
    ap.add_argument("--json", default=str(ROOT / "bench" / "out" / "jobs.json"))
    args = ap.parse_args()
    ensure_format()
    load_before = os.getloadavg()[0]
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    run = uuid.uuid4().hex[:8]
    prefix, old_prefix, queue = f"bench-{run}/T4TC_MONITOR/TOTAL/", f"bench-{run}/OLD/", f"bench-jobs-{run}"
    work = Path(tempfile.mkdtemp(prefix="telmon-bench-jobs-"))
    try:
        new = bench_telmon(args.archives, work, prefix, queue, client)
        counted = int(client.hget(prefix, "jobs_completed") or 0)
        old = bench_old(work / "inbox", client, old_prefix)
        old_counted = int(client.hget(old_prefix, "jobs_completed") or 0)
    finally:
        depth = cleanup(client, [f"bench-{run}/"], queue)
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "archives": args.archives,
        "telmon": {**new, "redis_jobs_completed": counted, "queue_messages": depth},
        "old_per_file": {**old, "redis_jobs_completed": old_counted},
        "ratio": new["archives_per_s"] / old["archives_per_s"],
        # other work on the machine shows here: the figures are only comparable at a low load
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_1m_before": load_before, "load_average_1m_after": os.getloadavg()[0]},
        "command": f"python bench/jobs.py --archives {args.archives}",
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"telmon end to end : {new['archives_per_s']:8.0f} archives/s ({args.archives} in {new['seconds']:.2f} s; "
          f"Redis counted {counted}, queue holds {depth})")
    print(f"  all written {new['stages_s'].get('written')} s, recorded {new['stages_s'].get('recorded')} s, "
          f"counted in Redis {new['stages_s'].get('redis')} s, confirmed by RabbitMQ {new['stages_s'].get('amqp')} s")
    print(f"old per-file work : {old['archives_per_s']:8.0f} archives/s ({old['archives']} in {old['seconds']:.2f} s; "
          "tar + parse + one Redis round-trip per key, no publishing)")
    print(f"ratio             : {result['ratio']:.2f}x   (load average {load_before:.2f} before, "
          f"{result['machine']['load_average_1m_after']:.2f} after, {os.cpu_count()} CPUs)")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
