"""The two-stage push writer: acknowledged means staged on disk; staged requests reach the
rollups exactly once in effect, across a crash (replay) and a clean stop (drain)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from telmon.push.schema import ensure_schema
from telmon.push.sensors import parse_line, read_event
from telmon.push.samples import SampleBatch
from telmon.push.writer import Job, PushWriter
from telmon.rollup.store import SeriesStore
from telmon.store.sqlite import SQLiteStore
from tests.push.conftest import NOW, lines


def _series(path: Path) -> SeriesStore:
    store = SQLiteStore(path)
    ensure_schema(store)
    return SeriesStore(store)


def _job(i: int, with_event: bool = False) -> Job:
    batch = SampleBatch.build([f"host.h.m{j}" for j in range(3)], [0, 1, 2], [NOW - 100 + i] * 3, [i, i + 1, i + 2],
                              ["h"])
    events = [read_event(parse_line(lines()[i])).row(NOW - 100 + i)] if with_event else []
    return Job(batch, events)


def _counts(ss: SeriesStore) -> tuple[int, int]:
    with ss.store._read() as conn:
        events = conn.execute("SELECT count(*) FROM push_sensor_events").fetchone()[0]
    try:
        samples = len(ss.samples("host.h.m0", 0, 4e9)[0])
    except Exception:
        samples = 0
    return samples, events


def test_staged_but_never_fed_is_replayed_at_start(tmp_path: Path) -> None:
    ss = _series(tmp_path / "t.db")
    crashed = PushWriter(ss, now=lambda: NOW)
    crashed._stage_group([_job(i, with_event=True) for i in range(5)])  # acknowledged, then "killed"
    assert _counts(ss) == (0, 0)
    again = PushWriter(ss, now=lambda: NOW)
    again.start()
    assert again.settle(20)
    assert _counts(ss) == (5, 5) and again.stats.replayed == 5
    again.stop()
    ss.store.close()


def test_replay_after_feed_but_before_unstaging_changes_nothing(tmp_path: Path) -> None:
    ss = _series(tmp_path / "t.db")
    crashed = PushWriter(ss, now=lambda: NOW)
    crashed._stage_group([_job(i, with_event=True) for i in range(4)])
    items = [crashed._staged.get_nowait() for _ in range(4)]
    crashed._write_rows(items)  # the feed wrote the store, then the process died before unstaging
    crashed._write_samples(items)
    before = ss.samples("host.h.m1", 0, 4e9)
    again = PushWriter(ss, now=lambda: NOW)
    again.start()
    assert again.settle(20)
    assert _counts(ss) == (4, 4)  # no event twice
    after = ss.samples("host.h.m1", 0, 4e9)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    again.stop()
    import sqlite3

    stage = sqlite3.connect(again.stage_path)
    assert stage.execute("SELECT count(*) FROM push_stage").fetchone()[0] == 0
    stage.close()
    ss.store.close()


def test_clean_stop_answers_and_feeds_everything(tmp_path: Path) -> None:
    ss = _series(tmp_path / "t.db")
    writer = PushWriter(ss, now=lambda: NOW, group_max=10)
    writer.start()
    answered = []

    def post(k: int) -> None:
        for i in range(k * 25, k * 25 + 25):
            writer.write_sync(_job(i), timeout=30)
            answered.append(i)

    threads = [threading.Thread(target=post, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.stop()
    assert len(answered) == 100
    assert _counts(ss)[0] == 100
    assert writer.stats.backlog == 0 and writer.stats.samples == 300
    ss.store.close()


def test_backlog_bound_slows_staging_instead_of_growing(tmp_path: Path) -> None:
    ss = _series(tmp_path / "t.db")
    writer = PushWriter(ss, now=lambda: NOW, backlog_max=6)
    writer.start()
    for i in range(20):
        writer.write_sync(_job(i), timeout=30)
        assert writer.stats.backlog <= 6 + 3
    writer.stop()
    assert _counts(ss)[0] == 20
    ss.store.close()
