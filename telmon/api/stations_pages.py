"""The station map, the station page and the schedule JSON endpoints (issue 4).

``router`` is included by the app; every route reads the store and the clock from
``request.app.state.service`` (so tests inject ``now`` through the Service) and the schedule
settings from its config.  Errors are TelmonErrors, which the app turns into JSON.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from telmon import __version__
from telmon.errors import BadRequest
from telmon.schedule import query as sq
from telmon.schedule.registry import FORMATS
from telmon.schedule.settings import ScheduleSettings

WEB = Path(__file__).resolve().parent.parent / "web"
_templates = Jinja2Templates(directory=str(WEB / "templates"))

Stations = Annotated[list[str] | None, Query(description="station id; repeat or separate with commas")]
Time = Annotated[str | None, Query(description="ISO 8601 (naive = UTC) or epoch seconds")]

router = APIRouter()


def _service(request: Request) -> Any:
    return request.app.state.service


def _store(request: Request) -> Any:
    return _service(request).store


def _settings(request: Request) -> ScheduleSettings:
    return ScheduleSettings.from_config(getattr(_service(request), "config", None))


def _now(request: Request) -> float:
    clock = getattr(_service(request), "now", None)
    return float(clock()) if callable(clock) else time.time()


# --- pages -------------------------------------------------------------------------------------


@router.get("/map", response_class=HTMLResponse, include_in_schema=False)
def map_page(request: Request) -> Any:
    return _templates.TemplateResponse(request, "map.html", {"version": __version__})


@router.get("/station/{code}", response_class=HTMLResponse, include_in_schema=False)
def station_page(request: Request, code: str) -> Any:
    return _templates.TemplateResponse(request, "station.html", {"version": __version__, "code": code})


# --- JSON --------------------------------------------------------------------------------------


@router.get("/api/v1/map", tags=["schedule"], summary="Located stations with their status, for the map")
def map_data(request: Request, feed: str | None = None, status: str | None = None) -> Any:
    return sq.status(_store(request), now=_now(request), settings=_settings(request), feed=feed, state=status,
                     located_only=True)


@router.get("/api/v1/schedule/status", tags=["schedule"], summary="Every station's status (A/D/U and slot status)")
def status_data(request: Request, feed: str | None = None, status: str | None = None) -> Any:
    return sq.status(_store(request), now=_now(request), settings=_settings(request), feed=feed, state=status)


@router.get("/api/v1/schedule/completeness", tags=["schedule"],
            summary="Expected / received / late / missing slots and completeness % per station")
def completeness_data(request: Request, station: Stations = None, start: Time = None, end: Time = None) -> Any:
    return sq.completeness(_store(request), station, start, end, now=_now(request), settings=_settings(request))


@router.get("/api/v1/schedule/missing", tags=["schedule"], summary="Scheduled stations with missing slots in a span")
def missing_data(request: Request, start: Time = None, end: Time = None, station: Stations = None,
                 runs: bool = False) -> Any:
    return sq.missing(_store(request), start, end, station, now=_now(request), settings=_settings(request), runs=runs)


@router.get("/api/v1/schedule/silent", tags=["schedule"], summary="Stations with no report since a time")
def silent_data(request: Request, since: Time = None, never: bool = True) -> Any:
    return sq.silent(_store(request), since, now=_now(request), settings=_settings(request), include_never=never)


@router.get("/api/v1/stations/{code}/schedule", tags=["schedule"],
            summary="What the station page shows: schedule, status, completeness, missing slots, recent data")
def station_data(request: Request, code: str) -> Any:
    return sq.station(_store(request), code, now=_now(request), settings=_settings(request))


@router.get("/api/v1/stations/{code}/slots", tags=["schedule"], summary="One station's slots over a span")
def slots_data(request: Request, code: str, start: Time = None, end: Time = None, limit: int | None = None) -> Any:
    return sq.slots(_store(request), code, start, end, now=_now(request), settings=_settings(request), limit=limit)


class StationEdit(BaseModel):
    name: str | None = None
    lat: float | None = None
    lon: float | None = None
    interval: str | float | None = None
    first: str | float | None = None
    window: str | float | None = None
    clear_schedule: bool = False


@router.patch("/api/v1/stations/{code}", tags=["stations"], summary="Edit a station's name, location or schedule")
def station_edit(request: Request, code: str, body: StationEdit) -> Any:
    return sq.edit(_store(request), code, name=body.name, lat=body.lat, lon=body.lon, interval=body.interval,
                   first=body.first, window=body.window, clear_schedule=body.clear_schedule, now=_now(request))


@router.post("/api/v1/stations/import", tags=["stations"],
             summary="Import a registry file sent as the request body (format recognised or given)")
async def station_import(request: Request, format: str | None = None, name: str = "upload") -> Any:
    if format is not None and format not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)}", field="format")
    body = await request.body()
    if not body.strip():
        raise BadRequest("send the registry file as the request body", field="body")
    with tempfile.TemporaryDirectory(prefix="telmon-import-") as d:
        path = Path(d) / Path(name).name
        path.write_bytes(body)
        # The import writes through the store's writer lock; run it off the event loop.
        from starlette.concurrency import run_in_threadpool

        out = await run_in_threadpool(sq.import_file, _store(request), path, format, now=_now(request),
                                      settings=_settings(request))
    out["path"] = name
    out["problems"] = [p.replace(str(path), name, 1) for p in out["problems"]]
    return out
