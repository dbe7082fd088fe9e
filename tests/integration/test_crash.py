"""Kill -9 the watcher mid-batch, restart it: every file is recorded exactly once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.support import holds, wait_for

N_FILES = 600


def edl(station: int, day: int) -> str:
    lines = ["//SOURCE crash EDL", f"//STATION {station}", "//DEVICE X", "//OVERWRITE true"]
    for h in range(24):
        t = time.gmtime(1_519_005_600 + day * 86400 + h * 3600)
        lines.append(f'"{time.strftime("%Y/%m/%d %H:%M", t)}", {h}.5')
    return "\n".join(lines) + "\n"


def start_watcher(inbox: Path, db: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "telmon", "watch", str(inbox), "--store", str(db), "--feed", "crash"],
        stdout=subprocess.DEVNULL, stderr=open(log, "ab"), env={**os.environ, "TELMON_SETTLE": "0.2"},
    )


def count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def test_kill_9_mid_batch_then_restart_records_every_file_exactly_once(tmp_path):
    inbox, db, log = tmp_path / "inbox", tmp_path / "data" / "t.db", tmp_path / "watch.log"
    inbox.mkdir()
    proc = start_watcher(inbox, db, log)
    try:
        # files written before the watch is in place are found by its catch-up scan
        wait_for(lambda: count(db, "SELECT count(*) FROM schema_versions") >= 1, what="watcher up")
        for i in range(N_FILES):
            (inbox / f"s{i % 50}.d{i // 50}.edl").write_text(edl(1000 + i % 50, i // 50))
            if i == N_FILES // 2:
                # kill while it is mid-stream: some files committed, more queued and unread
                wait_for(lambda: count(db, "SELECT count(*) FROM files") > 20, what="some commits")
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
        killed_at = count(db, "SELECT count(*) FROM files")
        assert 0 < killed_at < N_FILES
        proc = start_watcher(inbox, db, log)
        wait_for(lambda: count(db, "SELECT count(*) FROM files") >= N_FILES, timeout=60, what="all files after restart")
        holds(lambda: count(db, "SELECT count(*) FROM files") == N_FILES, 0.5, what="no doubled record")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    assert count(db, "SELECT count(*) FROM files") == N_FILES
    assert count(db, "SELECT count(DISTINCT path) FROM files") == N_FILES
    assert count(db, "SELECT count(*) FROM arrivals") == N_FILES
    assert count(db, "SELECT count(*) FROM entries") == N_FILES * 24
    assert count(db, "SELECT sum(entry_count) FROM stations") == N_FILES * 24
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
