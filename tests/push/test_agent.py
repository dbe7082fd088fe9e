"""The agent against a real receiver (uvicorn on a port of its own), including an outage of the
receiver mid-run with nothing lost; the spool's bound; SIGTERM through a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import orjson
import pytest

from telmon.api.app import create_app
from telmon.push import install_routes
from telmon.push.agent import Agent, Collector, HttpSender
from telmon.push.spool import Spool
from tests.push.conftest import LiveServer, make_service
from tests.support import TIMEOUT, wait_for


@pytest.fixture
def receiver(tmp_path: Path):
    svc, push = make_service(tmp_path / "srv", push_auth="tokens")
    app = create_app(svc)
    install_routes(app, svc)
    server = LiveServer(app)
    server.start()
    yield server, svc, push
    server.stop()
    svc.close()


def stored_times(push, host: str, label: str = "procs.count") -> list[float]:
    push.writer.settle()
    try:
        ts, _ = push.series.samples(f"host.{host}.{label}", 0, 4e9)
    except Exception:
        return []
    return ts.tolist()


def test_collector_snapshot_has_every_kind_of_metric() -> None:
    c = Collector()
    first = c.snapshot(1000.0)
    second = c.snapshot(1001.0)
    for key in ("cpu.total", "cpu.core.0", "load.1m", "mem.percent", "mem.available", "swap.total",
                "disk.root.percent", "procs.count"):
        assert key in second, key
    assert any(k.startswith("net.") and k.endswith(".bytes_recv_per_s") for k in second)
    assert any(k.startswith("net.") and k.endswith(".errin_per_s") for k in second)
    assert any(k.startswith("diskio.") and k.endswith(".write_bytes_per_s") for k in second)
    assert not any(k.endswith("_per_s") for k in first)  # rates need a previous snapshot
    assert all(isinstance(v, float) for v in second.values())


def test_agent_outage_mid_run_loses_nothing(receiver, tmp_path: Path) -> None:
    server, svc, push = receiver
    _, token = push.tokens.add("agent", hosts=["box"], now=svc.now())
    agent = Agent("box", HttpSender(server.url, token=token, timeout=2.0), Spool(tmp_path / "spool"),
                  interval=0.05, batch=7, keep_times=True)
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    wait_for(lambda: len(stored_times(push, "box")) >= 5, what="the first snapshots to arrive")

    server.stop()  # the receiver goes away mid-run
    during = agent.stats.collected
    wait_for(lambda: agent.stats.collected >= during + 10 and agent.stats.send_failures >= 2,
             what="snapshots taken while the receiver is down")
    assert len(agent.spool) >= 5  # they wait on disk
    assert any(p.suffix == ".json" for p in (tmp_path / "spool").iterdir())

    server.start()  # back on the same port
    wait_for(lambda: agent.stats.collected >= during + 20, what="more snapshots after the outage")
    agent.stop()
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    taken = agent.stats.collected_times
    wait_for(lambda: len(stored_times(push, "box")) == len(taken), what="every snapshot stored")
    assert stored_times(push, "box") == pytest.approx(taken, abs=1e-6)
    assert len(agent.spool) == 0 and agent.spool.dropped == 0
    assert agent.stats.sent == len(taken)
    # the receiver saw the spool fill up and drain through the agent's own series
    ts, pending = push.series.samples("host.box.agent.spool.pending", 0, 4e9)
    assert pending.max() >= 5
    # and the host answers in Lizmon's shape
    import httpx

    body = httpx.get(f"{server.url}/api/perf/box/by-minute:cpu.total").json()
    assert sum(p["num-samples"] for p in body["summary:by-minute:cpu.total"]["averages"]) == len(taken)


def test_agent_lizmon_mode(receiver, tmp_path: Path) -> None:
    server, svc, push = receiver
    _, token = push.tokens.add("liz", hosts=["old-box"], now=svc.now())
    agent = Agent("old-box", HttpSender(f"{server.url}/api/perf", token=token), Spool(tmp_path / "s"),
                  interval=0.01, batch=3, keep_times=True)
    agent.run(max_snapshots=4)
    # Lizmon's epochs are whole seconds: snapshots within one second share a time (the last wins)
    assert stored_times(push, "old-box", "mem.percent") == sorted({float(int(t)) for t in agent.stats.collected_times})
    assert len(agent.spool) == 0


def test_agent_keeps_snapshots_while_token_is_refused(receiver, tmp_path: Path) -> None:
    server, svc, push = receiver
    spool = Spool(tmp_path / "s")
    agent = Agent("box2", HttpSender(server.url, token="tmk_nope_nope"), spool, interval=0.01)
    agent.run(max_snapshots=3)
    assert len(spool) == 3 and agent.stats.sent == 0  # kept: a fixed token lets them through later
    assert "HTTP 401" in (agent.stats.last_error or "")
    _, token = push.tokens.add("box2", hosts=["box2"], now=svc.now())
    again = Agent("box2", HttpSender(server.url, token=token), spool, interval=0.01)
    again.flush()
    assert len(spool) == 0 and len(stored_times(push, "box2")) == 3


def test_spool_bound_drops_oldest_with_a_counter(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", max_bytes=10_000, max_files=5)
    for i in range(8):
        spool.add(orjson.dumps({"i": i}))
    assert len(spool) == 5 and spool.dropped == 3
    assert [orjson.loads(b)["i"] for _, b in spool.oldest(10)] == [3, 4, 5, 6, 7]
    again = Spool(tmp_path / "s", max_bytes=10_000, max_files=5)  # a restart keeps both
    assert len(again) == 5 and again.dropped == 3
    again.remove([s for s, _ in again.oldest(2)])
    assert [orjson.loads(b)["i"] for _, b in again.oldest(10)] == [5, 6, 7]
    small = Spool(tmp_path / "b", max_bytes=25)
    for i in range(4):
        small.add(b"x" * 10)
    assert len(small) == 2 and small.dropped == 2  # nothing dropped below the bound


def test_agent_process_exits_cleanly_on_sigterm(receiver, tmp_path: Path) -> None:
    server, svc, push = receiver
    _, token = push.tokens.add("proc", hosts=["proc-box"], now=svc.now())
    code = ("import sys; from telmon.cli import main; from telmon.push.cli import register; register(main); "
            "sys.exit(main())")
    env = {**os.environ, "TELMON_AGENT_TOKEN": token}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "agent", "--this-host", "proc-box", "--publish", server.url, "--interval", "0.1",
         "--spool", str(tmp_path / "spool")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(Path(__file__).resolve().parents[2]))
    try:
        wait_for(lambda: len(stored_times(push, "proc-box")) >= 3, what="the agent process to post")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert b"snapshot(s) taken" in err
    n = len(stored_times(push, "proc-box"))
    assert f"{n} snapshot(s) taken, {n} sent, 0 left in the spool".encode() in err


def test_in_serve_agent_writes_directly(tmp_path: Path) -> None:
    svc, push = make_service(tmp_path, agent_host="telmon-host", agent_interval=0.05)
    try:
        wait_for(lambda: len(stored_times(push, "telmon-host")) >= 3, what="the in-serve agent")
        assert push.status()["agent"]["host"] == "telmon-host"
        svc.stop()
        assert push.agent_thread is not None and not push.agent_thread.is_alive()
        times = stored_times(push, "telmon-host")
        assert len(times) == push.agent.stats.collected and np.all(np.diff(times) > 0)
    finally:
        svc.close()
