"""Fixtures for the tail tests: a real SQLite store with its series, log folders, a moving
clock (so rotated files settle), and helpers that read totals back through the query."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from telmon.rollup.store import SeriesStore
from telmon.store.sqlite import SQLiteStore
from telmon.tail.query import transfers
from telmon.tail.settings import TailSettings
from telmon.tail.synth import Truth
from telmon.tail.tailer import Tailer
from telmon.timeutil import parse_time

T0 = parse_time("2024-03-01T12:00:00Z")  # synthetic logs start here
OFFSET = -4 * 3600  # and are written in local time, 4 h behind UTC (like the real excerpts)
ZONE = "-04:00"


class Clock:
    """Now = two hours after T0 plus the real time elapsed (rotated files must settle)."""

    def __init__(self, start: float = T0 + 7200) -> None:
        self.start = start
        self.m0 = time.monotonic()
        self.skew = 0.0

    def __call__(self) -> float:
        return self.start + (time.monotonic() - self.m0) + self.skew


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.store = SQLiteStore(tmp_path / "telmon.db")
        self.series = SeriesStore(self.store)
        self.clock = Clock()
        self.tailers: list[Tailer] = []

    def settings(self, **kw: Any) -> TailSettings:
        base = dict(dirs=[str(self.logs)], zone=ZONE, machine="pds5", interval=0.02, chunk_bytes=1 << 20,
                    settle=0.3)
        base.update(kw)
        return TailSettings(**base)  # type: ignore[arg-type]

    def tailer(self, **kw: Any) -> Tailer:
        t = Tailer(self.store, self.series, self.settings(**kw), now=self.clock)
        self.tailers.append(t)
        return t

    def totals(self, **filters: Any) -> dict[str, Any]:
        return totals_of(self.series, self.clock(), **filters)

    def close(self) -> None:
        for t in self.tailers:
            t.stop()
        self.store.close()


def totals_of(series: SeriesStore, now: float, **filters: Any) -> dict[str, Any]:
    """Totals over everything (one row, all groups merged) through the public query."""
    data = transfers(series, start=T0 - 86400, end=T0 + 5 * 86400, by="none", now=now, **filters)
    if not data["rows"]:
        return {"files": 0, "bytes": 0, "errors": 0, "duplicates": 0, "over_max": 0}
    return data["rows"][0]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.close()


def expected(truth: Truth, max_latency: float = 15.0) -> dict[str, int]:
    t = truth.totals(max_latency)
    return {k: t[k] for k in ("files", "bytes", "errors", "duplicates", "over_max")}


def got(row: dict[str, Any]) -> dict[str, int]:
    return {k: row[k] for k in ("files", "bytes", "errors", "duplicates", "over_max")}
