"""Wiring into a running telmon: ``install(service, settings)`` inside ``telmon serve``.

It creates the tail tables (the push receiver needs them even with nothing to tail), and when
``tail_dirs`` names folders, builds a Tailer (and a Pusher when ``tail_push_url`` is set) on
the service's store, series and clock.  The returned handle starts and stops them; it is also
kept as ``service.tail`` so the API can report on it.
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


def install(service: Any, settings: TailSettings | None = None) -> TailRuntime:
    """Prepare tailing for ``service`` (call before ``service.start()``; then ``start()`` the
    handle with the service and ``stop()`` it before ``service.close()``)."""
    settings = settings or TailSettings.from_config(getattr(service, "config", None))
    ensure_schema(service.store)
    runtime = TailRuntime(settings)
    if settings.dirs:
        runtime.tailer = Tailer(service.store, service.series, settings, now=service.now)
    if settings.push_url:
        runtime.pusher = Pusher(service.store, settings.push_url, settings.push_token, now=service.now)
    service.tail = runtime
    return runtime
