"""The commands (telmon tail / transfers / rewind / backup / restore, and the core `rejected`)
and the HTTP routes, on the real excerpts with the MetPX options: machine, now, client, type,
span."""

from __future__ import annotations

import shutil
import types
from pathlib import Path
from typing import Any

import click
import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from telmon.api.app import create_app
from telmon.api.transfers import router
from telmon.cli import main
from telmon.rollup.store import SeriesStore
from telmon.store.sqlite import SQLiteStore
from telmon.tail.cli import register
from tests.support import SAMPLES

NOW = "2006-10-08T05:00:00Z"  # the excerpts are from 2006-10-08 04:24 UTC


def cli() -> click.Group:
    """The telmon command with the tail commands registered, as cli.py will once wired."""
    group = click.Group("telmon")
    for name, cmd in main.commands.items():
        group.add_command(cmd, name)
    register(group)
    return group


def run(*args: str) -> Any:
    result = CliRunner().invoke(cli(), list(args), catch_exceptions=False, env={"TELMON_CONFIG": ""})
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def excerpts(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("tx_loop.log", "rx_file.log"):
        shutil.copy(SAMPLES / "metpx" / name, logs / name)
    return logs


def test_tail_then_transfers_on_the_excerpts(tmp_path: Path, excerpts: Path) -> None:
    db = str(tmp_path / "t.db")
    out = run("tail", "--once", "--store", db, "--zone", "-04:00", "--machine", "pds5", "--now", NOW, str(excerpts))
    assert "read 25 line(s)" in out.output
    data = orjson.loads(run("transfers", "--store", db, "--client", "loop", "--type", "tx", "--span", "24h",
                            "--now", NOW, "--json").output)
    [row] = data["rows"]
    assert (row["direction"], row["client"]) == ("tx", "loop")
    assert (row["files"], row["bytes"], row["duplicates"], row["errors"], row["over_max"]) == (5, 645, 6, 0, 0)
    assert (row["latency_min"], row["latency_max"]) == (0.616, 0.62)
    assert row["latency_median"] == pytest.approx(0.618, rel=0.01)
    by_product = orjson.loads(run("transfers", "--store", db, "--type", "tx", "--by", "product", "--span", "24h",
                                  "--now", NOW, "--json").output)["rows"]
    assert [(r["product"], r["files"], r["bytes"], r["duplicates"]) for r in by_product] == [
        ("SA", 2, 260, 2), ("SI", 1, 103, 2), ("SM", 2, 282, 2)]
    table = run("transfers", "--store", db, "--span", "24h", "--now", NOW).output
    assert "loop" in table and "file" in table and "LATENCY_P95" in table
    # rx and machine filters; a span that does not reach the lines
    rx = orjson.loads(run("transfers", "--store", db, "--type", "rx", "--machine", "pds5", "--span", "24h",
                          "--now", NOW, "--json").output)["rows"]
    assert [(r["client"], r["files"], r["bytes"]) for r in rx] == [("file", 1, 107)]
    early = orjson.loads(run("transfers", "--store", db, "--span", "10m", "--now", "2006-10-08T04:00:00Z",
                             "--json").output)
    assert early["rows"] == []
    status = orjson.loads(run("tail", "--status", "--store", db, "--json").output)
    assert sorted(f["client"] for f in status["files"]) == ["file", "loop"]


def test_rewind_backup_restore_commands(tmp_path: Path, excerpts: Path) -> None:
    db = str(tmp_path / "t.db")
    tail = ("tail", "--once", "--store", db, "--zone", "-04:00", "--machine", "pds5", "--now", NOW, str(excerpts))
    run(*tail)
    out = run("rewind", "--store", db, "--client", "loop", "--since", "2006-10-08T04:00:00Z", "--machine", "pds5",
              "--now", NOW)
    assert "1 batch(es) reverted" in out.output
    gone = orjson.loads(run("transfers", "--store", db, "--client", "loop", "--span", "24h", "--now", NOW,
                            "--json").output)
    assert gone["rows"] == []
    run(*tail)
    again = orjson.loads(run("transfers", "--store", db, "--client", "loop", "--span", "24h", "--now", NOW,
                             "--json").output)
    assert again["rows"][0]["files"] == 5
    backup = str(tmp_path / "copy.db")
    assert "backed up to" in run("backup", "--store", db, backup).output
    run("restore", "--store", db, "--yes", backup)
    restored = orjson.loads(run("transfers", "--store", db, "--client", "loop", "--span", "24h", "--now", NOW,
                                "--json").output)
    assert restored["rows"][0]["files"] == 5


def test_rejected_lines_show_in_telmon_rejected(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(SAMPLES / "metpx" / "test1", logs / "tx_test1.log")  # the 2006 synthetic format
    db = str(tmp_path / "t.db")
    run("tail", "--once", "--store", db, "--zone", "-04:00", "--machine", "pds5", "--now", NOW, str(logs))
    out = orjson.loads(run("rejected", "--store", db, "--json").output)
    rows = [r for r in out["rejected"] if r["origin"] == "tail"]
    assert len(rows) == 20  # the first tail_keep_rejected of 25
    assert all("no log timestamp" in r["reason"] for r in rows)


def test_http_routes(tmp_path: Path, excerpts: Path) -> None:
    db = str(tmp_path / "t.db")
    run("tail", "--once", "--store", db, "--zone", "-04:00", "--machine", "pds5", "--now", NOW, str(excerpts))
    store = SQLiteStore(db)
    try:
        service = types.SimpleNamespace(store=store, series=SeriesStore(store), config=None, now=lambda: 0.0)
        app = create_app(service)  # type: ignore[arg-type]
        app.include_router(router)
        client = TestClient(app)
        resp = client.get("/api/v1/transfers", params={"client": "loop", "type": "tx", "span": "24h", "now": NOW})
        assert resp.status_code == 200
        [row] = resp.json()["rows"]
        assert (row["files"], row["bytes"], row["duplicates"]) == (5, 645, 6)
        resp = client.get("/api/v1/transfers", params={"by": "product,type", "span": "24h", "now": NOW, "step": "1h"})
        assert [(r["product"], r["direction"], r["files"]) for r in resp.json()["rows"]] == [
            ("SA", "tx", 2), ("SI", "tx", 1), ("SM", "rx", 1), ("SM", "tx", 2)]
        bad = client.get("/api/v1/transfers", params={"type": "xx", "now": NOW})
        assert bad.status_code == 400 and "tx or rx" in bad.json()["error"]
        bad = client.get("/api/v1/transfers", params={"step": "90s", "now": NOW})
        assert bad.status_code == 400 and bad.json()["field"] == "step"
        files = client.get("/api/v1/transfers/files").json()
        assert len(files["files"]) == 2 and files["outbox"]["messages"] == 0
        refused = client.post("/api/v1/transfers/push", content=b"{}")
        assert refused.status_code == 403 and "tail_accept_token" in refused.json()["error"]
    finally:
        store.close()


def test_install_tails_inside_a_service(tmp_path: Path, excerpts: Path) -> None:
    from telmon.config import Config
    from telmon.service import Service
    from telmon.tail.service import install
    from telmon.timeutil import parse_time
    from tests.support import wait_for

    cfg = Config()
    cfg.set("data_dir", str(tmp_path / "data"))
    # the tail_* settings, as telmon.config will hold them once wired
    cfg.values.update(tail_dirs=[str(excerpts)], tail_zone="-04:00", tail_machine="pds5", tail_interval=0.05)
    service = Service(cfg, now=lambda: parse_time(NOW))
    runtime = install(service, cfg)  # as telmon/wiring.py's install_capabilities will
    assert install(service, cfg) is runtime
    service.start()
    try:
        app = create_app(service)
        app.include_router(router)
        client = TestClient(app)

        def files() -> int:
            rows = client.get("/api/v1/transfers", params={"span": "24h", "by": "none"}).json()["rows"]
            return rows[0]["files"] if rows else 0

        wait_for(lambda: files() == 6, what="the service's tailer to count the excerpts' 6 files")
        status = client.get("/api/v1/transfers/files").json()
        assert status["runtime"]["tailer"]["lines"] == 25
    finally:
        service.close()  # stops the tailer too
    assert runtime.tailer is not None and runtime.tailer._thread is None


def test_catch_up_shows_a_progress_bar(tmp_path: Path) -> None:
    from telmon.tail import synth
    from tests.tail.conftest import OFFSET, T0

    logs = tmp_path / "logs"
    logs.mkdir()
    text, _ = synth.client_log("tx", "big", T0, 3600, 80_000, seed=1, zone_offset_s=OFFSET)
    assert len(text) > 8 << 20
    (logs / "tx_big.log").write_bytes(text)
    out = run("tail", "--once", "--progress", "--chunk-mb", "2", "--store", str(tmp_path / "t.db"), "--zone", "-04:00",
              "--machine", "m", "--now", "2024-03-01T14:00:00Z", str(logs))
    assert "catching up" in out.output
    lines = text.count(b"\n")
    assert f"read {lines} line(s)" in out.output
