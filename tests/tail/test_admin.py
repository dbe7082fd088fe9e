"""Reverting and rewinding collection, backup and restore, rejected lines, and the settings."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from telmon.rollup.store import SeriesStore
from telmon.store.sqlite import SQLiteStore
from telmon.tail import synth
from telmon.tail.admin import backup, restore, rewind, status
from telmon.tail.settings import TAIL_SETTINGS, TailSettings
from telmon.tail.tailer import Tailer
from tests.support import wait_for
from tests.tail.conftest import OFFSET, T0, ZONE, Clock, Env, expected, got, totals_of

DOCS = Path(__file__).resolve().parents[2] / "docs" / "transfers.md"


def text_of(client: str, seed: int, lines: int = 2000, direction: str = "tx") -> bytes:
    text, _ = synth.client_log(direction, client, T0, 3600, lines, seed=seed, zone_offset_s=OFFSET)
    return text


def halves(text: bytes) -> tuple[bytes, bytes]:
    rows = text.splitlines(keepends=True)
    return b"".join(rows[: len(rows) // 2]), b"".join(rows[len(rows) // 2:])


def truth(*parts: bytes) -> dict[str, int]:
    return expected(synth.file_truth(b"".join(parts), OFFSET))


def test_revert_of_one_batch_takes_out_exactly_its_lines(env: Env) -> None:
    a, b = halves(text_of("amis", 1))
    log = env.logs / "tx_amis.log"
    log.write_bytes(a)
    t = env.tailer()
    t.poll()
    env.clock.skew = 3600  # the next read lands in the next collection hour: a second batch
    with open(log, "ab") as f:
        f.write(b)
    t.poll()
    with env.store._read() as conn:
        batches = [r[0] for r in conn.execute("SELECT batch_id FROM tail_batches ORDER BY start_offset")]
        kinds = {r[0] for r in conn.execute("SELECT kind FROM batches")}
    assert len(batches) == 2 and kinds == {"series"}
    env.series.revert(batches[0], now=env.clock())  # what `telmon revert BATCH` does
    assert got(env.totals()) == truth(b)
    # rewinding from the start collects the reverted lines again, and only them once
    out = rewind(env.store, env.series, machine="pds5", since=T0 - 3600, now=env.clock())
    assert out["batches_reverted"] == 1  # the second; the first was reverted already
    t.poll()
    assert got(env.totals()) == truth(a, b)


def test_rewind_forgets_and_collects_again_after_a_zone_fix(env: Env) -> None:
    text = text_of("wxo", 2)
    (env.logs / "tx_wxo.log").write_bytes(text)
    wrong = env.tailer(zone="UTC")  # the logs are local time: every latency 4 h too small
    wrong.poll()
    bad = got(env.totals())
    assert bad["files"] == truth(text)["files"] and bad["over_max"] != truth(text)["over_max"]
    out = rewind(env.store, env.series, machine="pds5", since=T0 - 86400, clients=["wxo"], now=env.clock())
    assert out["files"] and out["batches_reverted"] >= 1
    assert got(env.totals())["files"] == 0
    env.tailer(zone=ZONE).poll()
    assert got(env.totals()) == truth(text)  # forgotten, not double counted (the sample times moved)
    events = [n["event"] for n in status(env.store)["notes"]]
    assert "rewound" in events


def test_rewind_from_the_middle_while_the_tailer_runs(env: Env) -> None:
    a, b = halves(text_of("nws", 3, lines=4000))
    log = env.logs / "rx_nws.log"
    log.write_bytes(a)
    t = env.tailer(chunk_bytes=64 << 10)
    t.start()
    wait_for(lambda: got(env.totals()) == truth(a), what="first half")
    with open(log, "ab") as f:
        f.write(b)
    out = rewind(env.store, env.series, machine="pds5", since=T0 + 900, now=env.clock())  # inside the first half
    assert out["files"]
    wait_for(lambda: got(env.totals()) == truth(a, b), what="everything once after the rewind")
    t.stop()
    assert got(env.totals()) == truth(a, b)


def test_rewind_keeps_what_it_cannot_read_again(env: Env) -> None:
    text = text_of("gone", 4, lines=800)
    log = env.logs / "tx_gone.log"
    log.write_bytes(text)
    t = env.tailer()
    t.poll()
    os.rename(log, env.logs / "tx_gone.log.1")
    t.poll()
    os.remove(env.logs / "tx_gone.log.1")
    t.poll()
    out = rewind(env.store, env.series, machine="pds5", since=T0 - 3600, now=env.clock())
    assert out["batches_reverted"] == 0 and out["kept"] and "no longer on disk" in out["kept"][0]["why"]
    assert got(env.totals()) == truth(text)


def test_backup_while_tailing_and_restore_resumes_exactly(env: Env, tmp_path: Path) -> None:
    text = text_of("bk", 5, lines=6000)
    rows = text.splitlines(keepends=True)
    log = env.logs / "tx_bk.log"
    log.write_bytes(b"".join(rows[:1000]))
    t = env.tailer(chunk_bytes=64 << 10)
    t.start()
    stop = threading.Event()

    def writer() -> None:
        for i in range(1000, len(rows), 250):
            with open(log, "ab") as f:
                f.write(b"".join(rows[i:i + 250]))
            if stop.wait(0.01):
                return

    w = threading.Thread(target=writer)
    w.start()
    wait_for(lambda: got(env.totals())["files"] > 0, what="some statistics")
    info = backup(env.store.path, tmp_path / "backup.db")  # while the tailer commits
    w.join()
    wait_for(lambda: got(env.totals()) == truth(text), what="all lines")
    t.stop()
    assert info["bytes"] > 0
    # restore into the live store path: the checkpoints come back with the statistics, and the
    # tailer collects the rest from the log still on disk -- exactly once
    env.store.close()
    restored = restore(env.store.path, tmp_path / "backup.db", now=env.clock())
    assert Path(restored["previous_kept_as"]).exists()
    store = SQLiteStore(env.store.path)
    try:
        series = SeriesStore(store)
        assert got(totals_of(series, env.clock()))["files"] <= truth(text)["files"]
        Tailer(store, series, env.settings(), now=env.clock).poll()
        assert got(totals_of(series, env.clock())) == truth(text)
    finally:
        store.close()
    env.store = SQLiteStore(tmp_path / "scratch.db")  # the fixture closes it


def test_backup_refuses_to_overwrite_and_restore_refuses_garbage(env: Env, tmp_path: Path) -> None:
    backup(env.store.path, tmp_path / "b.db")
    with pytest.raises(Exception, match="exists"):
        backup(env.store.path, tmp_path / "b.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(Exception, match="not a readable SQLite store|not a telmon store"):
        restore(env.store.path, junk, now=env.clock())


def test_unparseable_lines_are_counted_and_the_first_kept(env: Env) -> None:
    good = text_of("rej", 6, lines=300)
    junk = b"".join(b"this is not a log line %d\n" % i for i in range(30))
    (env.logs / "tx_rej.log").write_bytes(good + junk + good)
    env.tailer(keep_rejected=5).poll()
    rows = [r for r in env.store.rejected(limit=100) if r["origin"] == "tail"]
    assert len(rows) == 5
    first_bad_line = good.count(b"\n") + 1
    assert rows[-1]["line"] == first_bad_line and rows[-1]["offset"] == len(good)
    assert "no log timestamp" in rows[-1]["reason"] and "not a log line 0" in rows[-1]["reason"]
    [f] = status(env.store)["files"]
    assert f["bad"] == 30
    assert got(env.totals()) == truth(good + good)


def test_every_setting_is_documented_and_read() -> None:
    doc = DOCS.read_text()
    for s in TAIL_SETTINGS:
        assert f"`{s.name}`" in doc, f"{s.name} missing from docs/transfers.md"
    cfg = type("Cfg", (), {"tail_dirs": "/a,/b", "tail_zone": "America/Montreal", "tail_max_latency": "20",
                           "tail_chunk_mb": 1, "tail_machine": "pds5"})()
    s = TailSettings.from_config(cfg)
    assert (s.dirs, s.zone, s.max_latency, s.chunk_bytes, s.machine_name) == (
        ["/a", "/b"], "America/Montreal", 20.0, 1 << 20, "pds5")


def test_two_tailers_of_one_machine_never_count_twice(env: Env) -> None:
    text = text_of("race", 7, lines=6000)
    (env.logs / "tx_race.log").write_bytes(text)
    a = env.tailer(chunk_bytes=64 << 10)
    b = Tailer(env.store, SeriesStore(env.store), env.settings(chunk_bytes=64 << 10), now=Clock())
    env.tailers.append(b)
    a.start()
    b.start()
    wait_for(lambda: got(env.totals()) == truth(text), what="all lines")
    a.stop()
    b.stop()
    assert got(env.totals()) == truth(text)


def test_statistics_older_than_raw_retention_are_kept_not_counted_twice(env: Env) -> None:
    env.series.set_policy("transfers/*", "raw:1h,1m:14d,1h:2y,1d:10y")
    a, b = halves(text_of("old", 8, lines=1200))
    log = env.logs / "tx_old.log"
    log.write_bytes(a)
    t = env.tailer()
    t.poll()
    env.clock.skew = 4 * 3600  # hours later: raw samples of those lines are pruned
    env.series.prune(now=env.clock())
    out = rewind(env.store, env.series, machine="pds5", since=T0 - 3600, now=env.clock())
    assert out["batches_reverted"] == 0 and "raw retention" in out["kept"][0]["why"]
    assert got(env.totals()) == truth(a)
    # a rewritten head cannot be taken out either: what was counted stays, reading goes on
    edited = b"2024-03-01 07:59:59,999 [INFO] edited by hand\n" + a.split(b"\n", 1)[1]
    with open(log, "r+b") as f:
        f.write(edited + b)
        f.truncate()
    t.poll()
    assert got(env.totals()) == truth(a, b)
    assert any("older than raw retention" in n["detail"] for n in status(env.store)["notes"])
