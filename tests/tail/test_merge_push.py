"""Many machines: pushes to a central telmon over real HTTP (uvicorn on a free localhost port),
buffered while it is down, applied exactly once; two machines merged against one machine that
read the union of their lines."""

from __future__ import annotations

import gzip
import socket
import threading
import types
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from telmon.api.app import create_app
from telmon.api.transfers import router
from telmon.rollup.store import SeriesStore
from telmon.store.sqlite import SQLiteStore
from telmon.tail import synth
from telmon.tail.admin import rewind
from telmon.tail.push import Pusher, PushRefused, apply_push, outbox_depth
from telmon.tail.query import transfers
from telmon.tail.settings import TailSettings
from telmon.tail.tailer import Tailer
from tests.support import TIMEOUT, wait_for
from tests.tail.conftest import OFFSET, T0, ZONE, Clock, expected, got, totals_of

TOKEN = "s3cret-push-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Central:
    """A central telmon: its own store and series, the real app with the transfers router,
    served by uvicorn in a thread; can be stopped and started again on the same port."""

    def __init__(self, tmp: Path) -> None:
        self.store = SQLiteStore(tmp / "central.db")
        self.series = SeriesStore(self.store)
        self.clock = Clock()
        config = types.SimpleNamespace(tail_accept_token=TOKEN)
        self.service = types.SimpleNamespace(store=self.store, series=self.series, config=config, now=self.clock)
        self.app = create_app(self.service)  # type: ignore[arg-type]
        self.app.include_router(router)
        self.port = free_port()
        self.server: Any = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, name="central", daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, what="central telmon to start")

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            assert self.thread is not None
            self.thread.join(TIMEOUT)
            self.server = None

    def close(self) -> None:
        self.stop()
        self.store.close()


class Machine:
    """A machine tailing its own logs into its own store, pushing to the central telmon."""

    def __init__(self, tmp: Path, name: str, url: str, token: str = TOKEN, keep_local: bool = False) -> None:
        self.logs = tmp / name / "logs"
        self.logs.mkdir(parents=True)
        self.store = SQLiteStore(tmp / name / "edge.db")
        self.series = SeriesStore(self.store)
        settings = TailSettings(dirs=[str(self.logs)], zone=ZONE, machine=name, push_url=url, push_token=token,
                                keep_local=keep_local, chunk_bytes=256 << 10)
        self.tailer = Tailer(self.store, self.series, settings, now=Clock())
        self.pusher = Pusher(self.store, url, token, backoff_max=0.2, interval=0.05)

    def close(self) -> None:
        self.pusher.stop()
        self.store.close()


@pytest.fixture
def central(tmp_path: Path) -> Any:
    c = Central(tmp_path)
    yield c
    c.close()


def log_text(client: str, direction: str, seed: int, lines: int = 1500) -> bytes:
    text, _ = synth.client_log(direction, client, T0, 3600, lines, seed=seed, zone_offset_s=OFFSET)
    return text


def per_minute(series: SeriesStore, now: float, **kw: Any) -> list[dict[str, Any]]:
    data = transfers(series, start=T0, end=T0 + 3600, step="1m", by=["direction", "client"], now=now, **kw)
    return data["rows"]


def test_two_machines_merged_equal_one_machine_over_the_union(tmp_path: Path, central: Central) -> None:
    central.start()
    logs = {
        "pds5": {("tx", "amis"): 31, ("tx", "wxo"): 32, ("rx", "cmc"): 33},
        "pds6": {("tx", "amis"): 41, ("tx", "nws"): 42, ("rx", "cmc"): 43},
    }
    union = Path(tmp_path / "union" / "logs")
    union.mkdir(parents=True)
    machines = []
    for name, files in logs.items():
        m = Machine(tmp_path, name, central.url)
        machines.append(m)
        for (direction, client), seed in files.items():
            text = log_text(client, direction, seed)
            (m.logs / f"{direction}_{client}.log").write_bytes(text)
            with open(union / f"{direction}_{client}.log", "ab") as f:  # one machine with every line
                f.write(text)
    for m in machines:
        m.tailer.poll()
        assert outbox_depth(m.store)[0] > 0
        m.pusher.drain()
        assert outbox_depth(m.store)[0] == 0
    single_store = SQLiteStore(tmp_path / "union" / "one.db")
    try:
        single = SeriesStore(single_store)
        Tailer(single_store, single, TailSettings(dirs=[str(union)], zone=ZONE, machine="one"), now=Clock()).poll()
        now = central.clock()
        merged_rows, one_rows = per_minute(central.series, now), per_minute(single, now)
        assert len(merged_rows) == len(one_rows) > 60
        for a, b in zip(merged_rows, one_rows):
            for key in ("direction", "client", "start", "files", "bytes", "errors", "duplicates", "over_max",
                        "latency_min", "latency_max", "latency_median", "latency_p95"):
                assert a[key] == b[key], (key, a, b)  # sketches merged bin by bin: identical quantiles
            assert a["latency_mean"] == pytest.approx(b["latency_mean"], abs=2e-6)  # float sums, rounded to 1e-6
        assert got(totals_of(central.series, now)) == got(totals_of(single, now))
        # the merged median is the union's median within the sketch's 1 % accuracy
        lat = np.concatenate([synth.file_truth(p.read_bytes(), OFFSET).latencies() for p in union.iterdir()])
        row = transfers(central.series, start=T0, end=T0 + 3600, by="none", now=now)["rows"][0]
        assert row["files"] == len(lat)
        assert row["latency_median"] == pytest.approx(np.quantile(lat, 0.5, method="lower"), rel=0.0101)
        assert row["latency_p95"] == pytest.approx(np.quantile(lat, 0.95, method="lower"), rel=0.0101)
        # and per machine the central telmon keeps each apart
        per_machine = transfers(central.series, start=T0, end=T0 + 3600, by=["machine"], now=now)["rows"]
        assert [r["machine"] for r in per_machine] == ["pds5", "pds6"]
        assert sum(r["files"] for r in per_machine) == row["files"]
    finally:
        single_store.close()
        for m in machines:
            m.close()


def test_push_waits_on_disk_while_central_is_down(tmp_path: Path, central: Central) -> None:
    m = Machine(tmp_path, "pds7", central.url)
    try:
        a, b = log_text("amis", "tx", 51), log_text("amis", "tx", 52)
        log = m.logs / "tx_amis.log"
        log.write_bytes(a)
        m.tailer.poll()
        waiting = outbox_depth(m.store)[0]
        with pytest.raises(httpx.HTTPError):
            m.pusher.drain()  # nobody listening
        assert outbox_depth(m.store)[0] == waiting  # nothing lost
        m.pusher.start()  # retries with backoff in the background
        wait_for(lambda: m.pusher.failures > 0, what="the pusher to find the central telmon down")
        with open(log, "ab") as f:
            f.write(b)
        m.tailer.poll()
        central.start()
        wait_for(lambda: outbox_depth(m.store)[0] == 0, what="the outbox to drain")
        want = expected(synth.file_truth(a + b, OFFSET))
        assert got(totals_of(central.series, central.clock())) == want
        # central down again mid-stream, then back: still exactly once
        central.stop()
        c = log_text("amis", "tx", 53, lines=500)
        with open(log, "ab") as f:
            f.write(c)
        m.tailer.poll()
        central.start()
        wait_for(lambda: outbox_depth(m.store)[0] == 0, what="the outbox to drain again")
        assert got(totals_of(central.series, central.clock())) == expected(synth.file_truth(a + b + c, OFFSET))
    finally:
        m.close()


def test_a_resent_push_is_applied_once(tmp_path: Path, central: Central) -> None:
    m = Machine(tmp_path, "pds8", central.url)
    try:
        text = log_text("wxo", "tx", 61)
        (m.logs / "tx_wxo.log").write_bytes(text)
        m.tailer.poll()
        with m.store._read() as conn:
            rows = conn.execute("SELECT seq, created_at, body FROM tail_outbox ORDER BY seq").fetchall()
        body = {"machine": "pds8", "epoch": "e1",
                "messages": [{"seq": s, "created_at": c, "body": orjson.loads(b)} for s, c, b in rows]}
        first = apply_push(central.store, central.series, body, now=central.clock())
        again = apply_push(central.store, central.series, body, now=central.clock())  # the answer was lost
        assert first["applied"] == len(rows) and again["applied"] == 0
        assert got(totals_of(central.series, central.clock())) == expected(synth.file_truth(text, OFFSET))
    finally:
        m.close()


def test_push_with_a_bad_token_is_refused_and_kept(tmp_path: Path, central: Central) -> None:
    central.start()
    m = Machine(tmp_path, "pds9", central.url, token="wrong")
    try:
        (m.logs / "tx_amis.log").write_bytes(log_text("amis", "tx", 71, lines=300))
        m.tailer.poll()
        waiting = outbox_depth(m.store)[0]
        with pytest.raises(PushRefused, match="401"):
            m.pusher.drain()
        assert outbox_depth(m.store)[0] == waiting
        resp = httpx.post(central.url + "/api/v1/transfers/push", content=gzip.compress(b"{}"),
                          headers={"Authorization": f"Bearer {TOKEN}", "Content-Encoding": "gzip"})
        assert resp.status_code == 400 and "machine" in resp.json()["error"]
    finally:
        m.close()


def test_rewind_on_a_machine_is_forgotten_centrally(tmp_path: Path, central: Central) -> None:
    central.start()
    m = Machine(tmp_path, "pds10", central.url)
    try:
        text = log_text("amis", "tx", 81)
        (m.logs / "tx_amis.log").write_bytes(text)
        m.tailer.poll()
        m.pusher.drain()
        want = expected(synth.file_truth(text, OFFSET))
        assert got(totals_of(central.series, central.clock())) == want
        out = rewind(m.store, m.series, machine="pds10", since=T0 + 1800, push=True, now=m.tailer.now())
        assert out["batches_reverted"] >= 1
        m.pusher.drain()  # the forget message
        assert got(totals_of(central.series, central.clock()))["files"] < want["files"]
        m.tailer.poll()
        m.pusher.drain()
        assert got(totals_of(central.series, central.clock())) == want
    finally:
        m.close()
