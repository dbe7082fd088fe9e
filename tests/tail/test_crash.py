"""kill -9 of the tailer mid-file, restart, exact totals (a real subprocess per run)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from telmon.tail import synth
from telmon.timeutil import iso
from tests.support import TIMEOUT
from telmon.rollup.store import SeriesStore
from telmon.store.sqlite import SQLiteStore
from tests.tail.conftest import OFFSET, T0, Env, expected, got, totals_of

RUNNER = Path(__file__).with_name("run_cli.py")


def _offsets(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT coalesce(sum(offset), 0) FROM tail_files").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _tail(env: Env, db: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(RUNNER), "tail", "--once", "--no-progress", "--store", str(db), "--zone", "-04:00",
         "--machine", "pds5", "--chunk-mb", "0.0625", "--now", iso(T0 + 7200) or "", str(env.logs)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "TELMON_CONFIG": ""})


@pytest.mark.slow
def test_kill_9_mid_file_then_restart_counts_every_line_once(env: Env) -> None:
    texts = []
    for direction, seed in (("tx", 21), ("rx", 22)):
        text, _ = synth.client_log(direction, "crash", T0, 3600, 40_000, seed=seed, zone_offset_s=OFFSET)
        (env.logs / f"{direction}_crash.log").write_bytes(text)
        texts.append(text)
    total = sum(len(t) for t in texts)
    db = env.tmp / "crash.db"
    rng = random.Random(5)
    kills = 0
    deadline = time.monotonic() + 6 * TIMEOUT
    while time.monotonic() < deadline:
        before = _offsets(db)
        proc = _tail(env, db)
        # let it commit a little (or finish), then kill it without warning
        while proc.poll() is None and _offsets(db) <= before and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.15))  # not a wait: picks a random moment for the kill
        if proc.poll() is None and kills < 5:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            continue
        assert proc.wait(TIMEOUT) == 0, proc.stderr.read().decode() if proc.stderr else ""
        if _offsets(db) == total:
            break
    assert kills >= 3, "the tailer finished before it could be killed three times"
    assert _offsets(db) == total
    store = SQLiteStore(db)
    try:
        series = SeriesStore(store)
        now = T0 + 7200
        assert got(totals_of(series, now, clients="crash", directions="tx")) == expected(synth.file_truth(texts[0], OFFSET))
        assert got(totals_of(series, now)) == expected(synth.file_truth(texts[0] + texts[1], OFFSET))
        with store._read() as conn:
            batches = conn.execute("SELECT count(*) FROM tail_batches").fetchone()[0]
        assert batches >= 2
    finally:
        store.close()
