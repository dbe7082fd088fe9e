"""Every client, station and host drawn in parallel (``telmon graph --all``; MetPX's cron job
``generateAllGraphsForServer``).

A bounded pool of worker processes (drawing is CPU-bound and matplotlib is not thread-safe),
each opening the store once; at most two tasks per worker in flight, so memory stays flat with
10,000 stations.  Files are written under a temporary name and renamed, so a web server
serving the folder never hands out half an image.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telmon.graphs.model import Span

GROUPS = ("clients", "stations", "hosts")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # "client" | "station" | "host"
    subject: str  # tx/amis, a station code, a host name
    file: str  # path under the output folder


@dataclass(slots=True)
class BatchResult:
    drawn: int = 0
    empty: int = 0  # drawn, but nothing in the span
    failed: list[tuple[str, str]] = field(default_factory=list)  # (subject, why)
    seconds: float = 0.0
    jobs: int = 1


def _file_name(text: str) -> str:
    return _UNSAFE.sub("_", text)[:120] or "_"


def targets(store: Any, ss: Any, groups: Sequence[str] = GROUPS) -> list[Target]:
    """What ``--all`` draws: every transfer client/source, station and host, in that order."""
    from telmon.graphs.catalog import host_names, transfer_clients

    out: list[Target] = []
    if "clients" in groups:
        out += [Target("client", f"{d}/{c}", f"clients/{d}_{_file_name(c)}.png") for d, c in transfer_clients(ss)]
    if "stations" in groups:
        with store._read() as conn:
            codes = [r[0] for r in conn.execute("SELECT code FROM stations ORDER BY code")]
        out += [Target("station", c, f"stations/{_file_name(c)}.png") for c in codes]
    if "hosts" in groups:
        out += [Target("host", h, f"hosts/{_file_name(h)}.png") for h in host_names(store, ss)]
    return out


# --- the worker side -----------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init(store_url: str) -> None:
    """Once per worker process: open the store and import matplotlib (0.5 s, paid once)."""
    from telmon.graphs.render import _mpl
    from telmon.rollup.store import SeriesStore
    from telmon.store import open_store

    _mpl()
    store = open_store(store_url)
    _WORKER["store"], _WORKER["series"] = store, SeriesStore(store)
    from telmon.graphs.catalog import host_names

    _WORKER["hosts"] = host_names(store, _WORKER["series"])


def _draw(target: Target, out_dir: str, span: Span, now: float, width: int, panel_height: int) -> tuple[bool, float]:
    """Draw one target to its file; returns (had data, seconds)."""
    from telmon.graphs import build_chart
    from telmon.graphs.render import render

    t0 = time.perf_counter()
    store, ss = _WORKER["store"], _WORKER["series"]
    kwargs: dict[str, Any] = {"kind": target.kind, "span": span, "now": now}
    if target.kind == "client":
        kwargs["clients"] = [target.subject]
    elif target.kind == "host":
        kwargs["host"], kwargs["hosts"] = target.subject, _WORKER["hosts"]
    else:
        kwargs["station"] = target.subject
    chart = build_chart(store, ss, **kwargs)
    png = render(chart, width=width, panel_height=panel_height).png
    path = Path(out_dir) / target.file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(png)
    os.replace(tmp, path)
    return not chart.empty, time.perf_counter() - t0


def default_jobs() -> int:
    """Half the cores (at least one, at most 8): the server and the ingest keep the rest."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def draw_all(store_url: str, items: Sequence[Target], out_dir: str | Path, span: Span, *, now: float,
             jobs: int | None = None, width: int = 1000, panel_height: int = 150,
             on_done: Callable[[Target, str | None], None] | None = None) -> BatchResult:
    """Draw every target with ``jobs`` worker processes; ``on_done(target, error or None)``
    after each (the progress bar)."""
    jobs = max(1, int(jobs or default_jobs()))
    result = BatchResult(jobs=jobs)
    t0 = time.perf_counter()
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    todo = iter(items)
    left = len(items)
    # spawn, not fork: the parent holds SQLite connections, which must not cross a fork
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init, initargs=(store_url,)) as pool:
        running: dict[Future[tuple[bool, float]], Target] = {}
        while left or running:
            while left and len(running) < 2 * jobs:
                t = next(todo)
                left -= 1
                running[pool.submit(_draw, t, str(out_dir), span, now, width, panel_height)] = t
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                target = running.pop(fut)
                error = None
                try:
                    had_data, _ = fut.result()
                    result.drawn += 1
                    result.empty += not had_data
                except Exception as exc:  # noqa: BLE001 - one bad subject must not stop the batch
                    error = str(exc) or type(exc).__name__
                    result.failed.append((target.subject, error))
                if on_done is not None:
                    on_done(target, error)
    result.seconds = time.perf_counter() - t0
    return result
