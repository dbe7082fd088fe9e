"""Fixtures for the push tests: a real Service on tmp_path with the push receivers installed,
driven through the real app in-process (TestClient) or over a socket (uvicorn in a thread)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from telmon.api.app import create_app
from telmon.config import Config
from telmon.push import Push, install, install_routes
from telmon.service import Service
from tests.support import SAMPLES, TIMEOUT, wait_for

EVENTS = SAMPLES / "energy-sensors" / "events.txt"

# A fixed "now" a little after a UTC midnight, so slot edges are easy to reason about.
NOW = 1_700_006_400.0 + 1234.5


class Clock:
    """An injected clock tests move by hand (never a patched time module)."""

    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_service(tmp_path: Path, clock: Callable[[], float] | None = None, **settings: Any) -> tuple[Service, Push]:
    cfg = Config()
    cfg.set("data_dir", str(tmp_path))
    svc = Service(cfg, now=clock) if clock is not None else Service(cfg)
    values = {"push_auth": "open", "push_cluster_process": False, **settings}
    push = install(svc, values, now=clock)
    return svc, push


@dataclass
class App:
    service: Service
    push: Push
    client: TestClient
    clock: Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app_factory(tmp_path: Path, clock: Clock) -> Iterator[Callable[..., App]]:
    made: list[App] = []

    def make(**settings: Any) -> App:
        svc, push = make_service(tmp_path / f"s{len(made)}", clock, **settings)
        app = create_app(svc)
        install_routes(app, svc)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        made.append(App(svc, push, client, clock))
        return made[-1]

    yield make
    for a in made:
        a.client.__exit__(None, None, None)
        a.service.close()


@pytest.fixture
def open_app(app_factory: Callable[..., App]) -> App:
    return app_factory(push_auth="open")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """The real app served by uvicorn in a thread on a port of its own; can be stopped and
    started again on the same port (a receiver outage)."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.server: Any = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import uvicorn

        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="test-uvicorn", daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, what="uvicorn to start")

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            assert self.thread is not None
            self.thread.join(TIMEOUT)
            self.server = None
            # the port must be free again before a restart binds it
            wait_for(self._port_free, what="the port to be released")

    def _port_free(self) -> bool:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", self.port))
            except OSError:
                return False
            return True


def lines() -> list[str]:
    return EVENTS.read_text().splitlines()


def sleep_until(cond: Callable[[], object], what: str) -> object:
    return wait_for(cond, what=what)


__all__ = ["NOW", "App", "Clock", "LiveServer", "lines", "make_service", "time"]
