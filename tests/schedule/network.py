"""A small sample network for the map and API tests: a Service on tmp_path with a fixed clock,
the schedule recorder installed, stations from a CSV registry and the real OKVI4 platform XML,
and EDL files through the real ingest path so that every map status occurs once."""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from telmon.config import Config
from telmon.schedule import query as sq
from telmon.schedule.service import install
from telmon.service import Service
from telmon.timeutil import utc_datetime
from tests.schedule.conftest import OKVI4_DATA, OKVI4_XML
from tests.support import serve_app

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc).timestamp()
HOUR = 3600.0
TOP = NOW - 30 * 60  # 12:00, the newest hourly slot start

REGISTRY = """id,name,lat,lon,interval,first,window
ONTIME1,Denver gauge,39.74,-104.99,1h,0,300
LATE1,Chicago gauge,41.88,-87.63,1h,0,300
MISS1,Atlanta gauge,33.75,-84.39,1h,0,300
SILENT1,Seattle gauge,47.61,-122.33,1h,0,300
NEVER1,Boston gauge,42.36,-71.06,1h,0,300
UNSCHED1,Phoenix gauge,33.45,-112.07,,,
NOLOC1,No location,,,1h,0,300
"""

# station -> its map status at NOW
EXPECTED = {"ONTIME1": "on_time", "LATE1": "late", "MISS1": "missing", "SILENT1": "silent", "NEVER1": "never",
            "UNSCHED1": "unscheduled", "CE344292": "silent"}


def _edl(code: str, times: list[float]) -> bytes:
    lines = [f"//STATION {code}", "//DEVICE STAGE", "//OVERWRITE true"]
    lines += [f'"{utc_datetime(t).strftime("%Y/%m/%d %H:%M")}", {1 + i / 100:.2f}' for i, t in enumerate(times)]
    return ("\n".join(lines) + "\n").encode()


def build(tmp: Path) -> Service:
    service = Service(Config(values={**Config().values, "data_dir": str(tmp / "data")}), now=lambda: NOW)
    install(service)
    reg = tmp / "stations.csv"
    reg.write_text(REGISTRY)
    sq.import_file(service.store, reg, now=NOW)
    sq.import_file(service.store, OKVI4_XML, now=NOW)
    day = [TOP - k * HOUR for k in range(48)][::-1]
    files = {
        "ONTIME1": day,
        "LATE1": day[:-1] + [TOP + 10 * 60],  # the 12:00 report came at 12:10: outside its 5-minute window
        "MISS1": [t for t in day if t <= TOP - 3 * HOUR],
        "SILENT1": [t - 3 * 86400 for t in day],
        "UNSCHED1": day[-3:],
    }
    inbox = tmp / "inbox"
    inbox.mkdir()
    items = []
    for code, times in files.items():
        p = inbox / f"{code}.edl"
        p.write_bytes(_edl(code, times))
        items.append((p, "rsync"))
    (inbox / "OKVI4.data").write_bytes(OKVI4_DATA.read_bytes())
    items.append((inbox / "OKVI4.data", "GOES"))
    results = service.ingestor.ingest(items)
    assert all(r.status == "ok" for r in results), [(r.path, r.reasons) for r in results]
    return service


def app_for(service: Service) -> Any:
    from telmon.api.app import create_app
    from telmon.api.stations_pages import router

    app = create_app(service)
    if not any(getattr(r, "path", None) == "/map" for r in app.routes):
        app.include_router(router)  # until telmon/api/app.py includes it
    return app


def serve(service: Service) -> contextlib.AbstractContextManager[str]:
    """The real app under uvicorn on a free localhost port, in a thread; yields its base URL."""
    return serve_app(app_for(service), "uvicorn-test")
