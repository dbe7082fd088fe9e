"""install(service): tables, one hook however often it is called, schedules from the config."""

from __future__ import annotations

from pathlib import Path

from telmon.config import Config
from telmon.schedule import query as sq
from telmon.schedule.service import install
from telmon.schedule.store import SlotRecorder
from telmon.service import Service
from tests.schedule.conftest import OKVI4_XML

NOW = 1_700_000_000.0


def test_install_is_idempotent_and_reads_platforms_and_config_stations(tmp_path: Path):
    cfg = Config(values={**Config().values, "data_dir": str(tmp_path)})
    cfg.platforms.append(str(OKVI4_XML))
    cfg.stations.update({"G1": {"interval": "15m", "window": "30", "name": "Gauge"}, "G2": {"name": "no interval"}})
    service = Service(cfg, now=lambda: NOW)
    try:
        install(service)
        install(service)
        assert sum(isinstance(h, SlotRecorder) for h in service.store.record_hooks) == 1
        g1 = sq.station(service.store, "G1", now=NOW)["schedule"]
        assert (g1["interval_s"], g1["window_s"], g1["source"]) == (900, 30, "config")
        assert sq.station(service.store, "G2", now=NOW)["schedule"] is None
        okvi4 = sq.station(service.store, "CE344292", now=NOW)["schedule"]
        assert (okvi4["interval_s"], okvi4["first_s"], okvi4["source"]) == (3600, 290, "registry")
    finally:
        service.close()
