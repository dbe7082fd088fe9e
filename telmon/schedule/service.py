"""Wiring into a running telmon: ``install(service)`` (call it once, before ``service.start()``).

It creates the schedule tables, adds the slot recorder to the store's record hooks (so slots
change in the same transaction as the arrivals that fill them) and registers the schedules of
the OpenDCS platform files named in the config.  Nothing periodic is needed: a slot that closes
unfilled is counted from ``now`` at question time (the trailing run after a station's newest
report is arithmetic, never written), so there is no sweeper to fall behind.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from telmon.errors import ConfigError
from telmon.schedule.registry import read_opendcs
from telmon.schedule.settings import ScheduleSettings
from telmon.schedule.store import SlotRecorder, ensure_schema, write_stations

log = logging.getLogger("telmon.schedule")


def install(service: Any, *, now: float | None = None) -> SlotRecorder:
    """Make ``service.store`` keep slots current; returns the recorder (idempotent)."""
    store = service.store
    settings = ScheduleSettings.from_config(getattr(service, "config", None))
    ensure_schema(store)
    for hook in store.record_hooks:
        if isinstance(hook, SlotRecorder):
            return hook
    recorder = SlotRecorder(settings)
    store.record_hooks.append(recorder)
    platforms = list(getattr(getattr(service, "config", None), "platforms", []) or [])
    t = now if now is not None else (service.now() if callable(getattr(service, "now", None)) else time.time())
    for p in platforms:
        try:
            reg = read_opendcs(Path(p).read_bytes(), str(p), default_window=settings.default_window)
        except (OSError, ConfigError) as exc:
            log.warning("schedules from %s not loaded: %s", p, exc)
            continue
        for problem in reg.problems:
            log.warning("%s", problem)
        write_stations(store, reg.stations, now=t, settings=settings)
    return recorder
