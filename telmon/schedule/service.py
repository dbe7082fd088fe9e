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

from telmon.errors import ConfigError, TelmonError
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
    _config_schedules(store, getattr(getattr(service, "config", None), "stations", {}) or {}, settings)
    return recorder


def _config_schedules(store: Any, stations: dict[str, dict[str, Any]], settings: ScheduleSettings) -> None:
    """``[stations.<id>]`` tables with an ``interval`` (and optional ``first``, ``window``) give a
    schedule of source ``config``, unless a registry import or an edit already gave one."""
    from telmon.schedule.slots import Schedule
    from telmon.schedule.store import StationRow, load_row, save_row, set_schedule
    from telmon.timeutil import parse_span

    wanted = {}
    for code, st in stations.items():
        if not st.get("interval"):
            continue
        try:
            iv = parse_span(st["interval"])
            first = float(parse_span(st["first"])) if st.get("first") else 0.0
            window = float(parse_span(st["window"])) if st.get("window") else min(settings.default_window, iv / 2)
            wanted[code] = Schedule(iv, first, window, None, "config")
        except (ValueError, TelmonError) as exc:
            log.warning("station %s: schedule from the config not used: %s", code, exc)
    if not wanted:
        return
    with store.transaction() as conn:
        for code, sched in wanted.items():
            r = conn.execute("SELECT id FROM stations WHERE code = ?", (code,)).fetchone()
            if r is None:
                continue
            row = load_row(conn, r[0]) or StationRow(r[0], infer_at=max(1, settings.infer_min))
            if row.schedule is None or row.schedule.source in ("inferred", "config"):
                set_schedule(conn, row, sched)
                save_row(conn, row)
