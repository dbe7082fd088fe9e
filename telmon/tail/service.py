"""Wiring into a running telmon: ``install(service, config)`` inside ``telmon serve``
(telmon/wiring.py's install_capabilities), like the other capabilities.

It creates the tail tables (the push receiver needs them even with nothing to tail), and when
``tail_dirs`` names folders, builds a Tailer (and a Pusher when ``tail_push_url`` is set) on
the service's store, series and clock, starts them, and stops them with ``service.stop()``.
The runtime is kept as ``service.tail`` so the API can report on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from telmon.tail.push import Pusher
from telmon.tail.schema import ensure_schema
from telmon.tail.settings import TailSettings
from telmon.tail.tailer import Tailer

log = logging.getLogger("telmon.tail")


@dataclass(slots=True)
class TailRuntime:
    settings: TailSettings
    tailer: Tailer | None = None
    pusher: Pusher | None = None

    def start(self) -> None:
        if self.tailer is not None:
            self.tailer.start()
            log.info("tailing %s as machine %s", ", ".join(self.settings.dirs), self.tailer.machine)
        if self.pusher is not None:
            self.pusher.start()

    def stop(self) -> None:
        if self.tailer is not None:
            self.tailer.stop()
        if self.pusher is not None:
            self.pusher.stop()

    def status(self) -> dict[str, Any]:
        return {
            "tailer": self.tailer.status.to_json() if self.tailer else None,
            "push": self.pusher.status() if self.pusher else None,
        }


def install(service: Any, settings: Any = None, *, start: bool = True) -> TailRuntime:
    """Tail the configured logs inside ``service`` (``telmon serve``): creates the tail tables
    (the push receiver needs them even with nothing to tail), builds the Tailer when
    ``tail_dirs`` names folders and the Pusher when ``tail_push_url`` is set, starts them
    (unless ``start`` is False) and chains their stop to ``service.stop()``.  Idempotent: a
    second call returns the first one's runtime.  ``settings``: a Config or TailSettings."""
    existing = getattr(service, "tail", None)
    if isinstance(existing, TailRuntime):
        return existing
    if not isinstance(settings, TailSettings):
        settings = TailSettings.from_config(settings if settings is not None else getattr(service, "config", None))
    ensure_schema(service.store)
    runtime = TailRuntime(settings)
    if settings.dirs:
        runtime.tailer = Tailer(service.store, service.series, settings, now=service.now)
    if settings.push_url:
        runtime.pusher = Pusher(service.store, settings.push_url, settings.push_token, now=service.now)
    service.tail = runtime
    previous = getattr(service, "stop", None)

    def stop() -> None:
        if previous is not None:
            previous()
        runtime.stop()

    service.stop = stop
    if start:
        runtime.start()
    return runtime
