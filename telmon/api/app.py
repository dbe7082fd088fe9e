"""The FastAPI application: the five questions, listings, status, and the pages.

Every error leaves as JSON ``{"error": "...", "kind": "..."}`` with a 4xx status when the
caller can fix it; an unexpected failure is a 500 with no traceback (it goes to the log).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from telmon import __version__, query
from telmon.api.responses import FastJSON
from telmon.errors import TelmonError

if TYPE_CHECKING:
    from telmon.service import Service

log = logging.getLogger("telmon.api")

WEB = Path(__file__).resolve().parent.parent / "web"

Stations = Annotated[list[str] | None, Query(description="station id; repeat or separate with commas")]
Time = Annotated[str | None, Query(description="ISO 8601 (naive = UTC) or epoch seconds")]


def create_app(service: Service) -> FastAPI:
    app = FastAPI(
        title="telmon",
        version=__version__,
        description="Telemetry monitor: what arrived, what is late or missing, and how the flows behave.",
        default_response_class=FastJSON,
    )
    app.state.service = service
    app.state.series = service.series
    templates = Jinja2Templates(directory=str(WEB / "templates"))
    _install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=str(WEB / "static")), name="static")

    store = service.store

    @app.get("/api/v1/updated", tags=["questions"], summary="1. Stations with file updates between start and end")
    def updated(start: Time = None, end: Time = None) -> Any:
        return query.stations_updated(store, start, end)

    @app.get("/api/v1/gaps", tags=["questions"], summary="2. Stations with gaps in their time entries")
    def gaps(start: Time = None, end: Time = None, station: Stations = None) -> Any:
        return query.station_gaps(store, start, end, station)

    @app.get("/api/v1/silent", tags=["questions"], summary="3. Stations not updated between start and end")
    def silent(start: Time = None, end: Time = None) -> Any:
        return query.stations_silent(store, start, end)

    @app.get("/api/v1/arrivals", tags=["questions"], summary="4. Update (arrival) times for stations")
    def arrivals(station: Stations = None, start: Time = None, end: Time = None,
                 limit: int | None = None, cursor: str | None = None) -> Any:
        return query.arrivals(store, station, start, end, limit=limit, cursor=cursor)

    @app.get("/api/v1/entries", tags=["questions"], summary="5. Time entries and values for stations")
    def entries(station: Stations = None, start: Time = None, end: Time = None,
                limit: int | None = None, cursor: str | None = None) -> Any:
        return query.entries(store, station, start, end, limit=limit, cursor=cursor)

    @app.get("/api/v1/stations", tags=["stations"], summary="Stations with their last arrival and entry")
    def stations(search: str | None = None, limit: int | None = None, offset: int = 0) -> Any:
        return query.station_list(store, search=search, limit=limit, offset=offset)

    @app.get("/api/v1/stations/{code}", tags=["stations"], summary="One station")
    def station(code: str) -> Any:
        return query.station_detail(store, code)

    @app.get("/api/v1/rejected", tags=["health"], summary="Rejected files and parts, newest first")
    def rejected(since: Time = None, limit: int | None = None) -> Any:
        return query.rejected(store, since=since, limit=limit)

    @app.get("/api/v1/status", tags=["health"], summary="Counts, watchers and the ingest worker")
    def status() -> Any:
        return service.status()

    @app.get("/healthz", tags=["health"], summary="Liveness")
    def healthz() -> Any:
        return {"ok": True, "version": __version__}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(request: Request) -> Any:
        return templates.TemplateResponse(request, "overview.html", {"version": __version__})

    @app.get("/api/v1/overview", tags=["pages"], summary="What the overview page shows")
    def overview_data() -> Any:
        now = time.time()
        return {
            "status": service.status(),
            "recent": query.files_recent(store, limit=15),
            "updated_last_hour": query.stations_updated(store, now - 3600, now)["count"],
            "stations": query.station_list(store, limit=200)["stations"],
            "rejected": query.rejected(store, limit=10)["rejected"],
        }

    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TelmonError)
    async def telmon_error(request: Request, exc: TelmonError) -> JSONResponse:
        if exc.status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(exc.to_json(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
            problems.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
        return JSONResponse({"error": "; ".join(problems) or "invalid request", "kind": "BadRequest"}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such path {request.url.path}; see /docs for the API"
        return JSONResponse({"error": message, "kind": "HTTPError"}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal error; the server log has the details", "kind": "InternalError"},
                            status_code=500)
