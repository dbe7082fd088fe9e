"""`telmon worker` on the real broker: ack only after the command succeeds, so a failed
command's message comes back; prefetch runs commands side by side."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import click
import orjson
import pika
from click.testing import CliRunner

from telmon.sinks.amqp import AmqpTarget, declare
from telmon.sinks.cli import register
from telmon.sinks.worker import JobWorker, WorkerOptions, command_for
from tests.jobs.support import AMQP_URL, amqp_connection, queue_depth
from tests.support import wait_for

# Fails the first time it sees a message id, succeeds the second time (state in files).
FLAKY = """
import os, pathlib, sys
d = pathlib.Path(sys.argv[1]); mid = os.environ["TELMON_MESSAGE_ID"]; body = sys.stdin.read()
if not (d / mid).exists():
    (d / mid).write_text("failed once")
    sys.exit(3)
(d / (mid + ".done")).write_text(os.environ["TELMON_REDELIVERED"] + " " + sys.argv[2] + " " + body)
"""

# Records when it ran, to see commands overlap under prefetch > 1.
SLOW = """
import os, pathlib, sys, time
d = pathlib.Path(sys.argv[1]); start = time.monotonic(); time.sleep(0.4)
(d / os.environ["TELMON_MESSAGE_ID"]).write_text(f"{start} {time.monotonic()}")
"""


def publish(queue: str, count: int) -> list[str]:
    conn = amqp_connection()
    try:
        ch = conn.channel()
        declare(ch, AmqpTarget(url=AMQP_URL, queue=queue))
        ch.confirm_delivery()
        ids = []
        for i in range(count):
            mid = f"{i:064x}"
            body = orjson.dumps({"id": mid, "path": f"/nfs/job{i}.tgz", "sha256": mid})
            ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2, message_id=mid))
            ids.append(mid)
        return ids
    finally:
        conn.close()


def test_a_failed_command_gets_its_message_again_and_success_acks(tmp_path: Path, amqp_queue):
    ids = publish(amqp_queue, 5)
    worker = JobWorker(WorkerOptions(url=AMQP_URL, queue=amqp_queue, prefetch=2, retry_delay=0.05,
                                     command=[sys.executable, "-c", FLAKY, str(tmp_path), "{path}"]))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: all((tmp_path / f"{m}.done").exists() for m in ids), what="every message processed")
    finally:
        worker.stop()
        thread.join(20)
    assert not thread.is_alive()
    for i, m in enumerate(ids):
        redelivered, path, body = (tmp_path / f"{m}.done").read_text().split(" ", 2)
        assert redelivered == "1"  # it came back from the broker after the failure
        assert path == f"/nfs/job{i}.tgz" and orjson.loads(body)["id"] == m
    assert worker.stats.failed == 5 and worker.stats.succeeded == 5
    assert queue_depth(amqp_queue) == 0  # acked once it succeeded


def test_a_message_is_given_up_after_max_failures(tmp_path: Path, amqp_queue):
    publish(amqp_queue, 1)
    worker = JobWorker(WorkerOptions(url=AMQP_URL, queue=amqp_queue, retry_delay=0.01, max_failures=3,
                                     max_messages=3, command=[sys.executable, "-c", "raise SystemExit(1)"]))
    stats = worker.run()
    assert stats.failed == 3 and stats.gave_up == 1 and stats.succeeded == 0
    assert queue_depth(amqp_queue) == 0  # rejected without requeue (dead-lettered if configured)


def test_prefetch_runs_commands_side_by_side(tmp_path: Path, amqp_queue):
    ids = publish(amqp_queue, 3)
    worker = JobWorker(WorkerOptions(url=AMQP_URL, queue=amqp_queue, prefetch=3, max_messages=3,
                                     command=[sys.executable, "-c", SLOW, str(tmp_path)]))
    worker.run()
    spans = [tuple(map(float, (tmp_path / m).read_text().split())) for m in ids]
    assert max(s for s, _ in spans) < min(e for _, e in spans)  # all three were running at once


def test_the_cli_worker_runs_until_max_messages(tmp_path: Path, amqp_queue):
    ids = publish(amqp_queue, 2)
    group = click.Group("telmon")
    register(group)
    cmd = f"{sys.executable} -c \"import os,pathlib; pathlib.Path('{tmp_path}', os.environ['TELMON_MESSAGE_ID']).touch()\""
    result = CliRunner().invoke(group, ["worker", "--queue", amqp_queue, "--exec", cmd, "--amqp-url", AMQP_URL,
                                        "--max-messages", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "2 succeeded, 0 failed" in result.output
    assert all((tmp_path / m).exists() for m in ids)


def test_placeholders_are_filled_from_the_message():
    assert command_for(["proc", "{path}", "--id={id}", "{station}"], {"path": "/a.tgz", "id": "x"}) == [
        "proc", "/a.tgz", "--id=x", ""]


def test_cli_outbox_status_shows_waiting_rows(tmp_path: Path):
    from telmon.ingest.pipeline import Ingestor
    from telmon.sinks.outbox import Outbox, Route
    from telmon.store.sqlite import SQLiteStore
    from tests.jobs.support import Job, drop

    db = tmp_path / "t.db"
    with SQLiteStore(db) as store:
        box = Outbox(store)
        store.record_hooks.append(box.hook([Route("amqp", frozenset({"jobarchive"}))]))
        Ingestor(store, now=time.time).ingest([(drop(tmp_path, "a.tgz", Job(1, "u", 0, 5).archive()), "nfs")])
        box.failed("amqp", "ConnectionRefusedError(111)", now=time.time())
    group = click.Group("telmon")
    register(group)
    result = CliRunner().invoke(group, ["outbox", "status", "--store", str(db), "--json"])
    assert result.exit_code == 2, result.output  # failing: rows wait and the last attempt failed
    [row] = orjson.loads(result.output)["sinks"]
    assert row["sink"] == "amqp" and row["pending"] == 1 and row["state"] == "failing"
    assert row["last_error"] == "ConnectionRefusedError(111)"
