"""Helpers shared by tests: one wait helper with one timeout, and where the sample data is."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

TIMEOUT = 20.0  # seconds: the one shared limit for waiting on a condition
DATA = Path(__file__).parent / "data"
SAMPLES = DATA / "samples"


def wait_for(cond: Callable[[], object], timeout: float = TIMEOUT, what: str = "condition") -> object:
    """Poll ``cond`` every 10 ms until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def holds(cond: Callable[[], object], duration: float, what: str = "condition") -> None:
    """Check ``cond`` every 10 ms for ``duration`` seconds; fail at once if it stops holding.

    For "nothing more happens" checks (no second delivery, no doubled record): a bare sleep
    followed by one look would miss a duplicate that comes and goes, and says nothing of why.
    """
    deadline = time.monotonic() + duration
    while True:
        if not cond():
            raise AssertionError(f"{what} stopped holding")
        if time.monotonic() > deadline:
            return
        time.sleep(0.01)


@contextlib.contextmanager
def serve_app(app: Any, name: str = "uvicorn-test") -> Iterator[str]:
    """``app`` under a real uvicorn on a free localhost port, in a thread; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, what="uvicorn to start")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
