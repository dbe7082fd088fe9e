"""The dashboard (issue 8): PNG graphs, the station / host / transfer-client pages, the MetPX-like
day / week / month / year pages, and the JSON each page polls.

``router`` is included by the app.  Routes read the store, the series and the clock from
``request.app.state.service`` (tests inject ``now`` through the Service).  Pages are server
rendered shells; their data comes from ``/api/v1/dashboard/...`` (the same library functions
as ``telmon graph``), polled so that pages change without a reload.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from telmon import __version__
from telmon.errors import BadRequest
from telmon.graphs import pages
from telmon.graphs.model import SPANS
from telmon.timeutil import iso

WEB = Path(__file__).resolve().parent.parent / "web"
_templates = Jinja2Templates(directory=str(WEB / "templates"))

Many = Annotated[list[str] | None, Query(description="repeat or separate with commas")]
Time = Annotated[str | None, Query(description="ISO 8601 (naive = UTC) or epoch seconds")]

router = APIRouter()


class _Caches:
    """Answers shared by every browser polling this app, for a few seconds."""

    def __init__(self) -> None:
        self.status = pages.TTLCache(3.0)  # every station's schedule status (70 ms with 10,000 stations)
        self.clients = pages.TTLCache(15.0)  # every client's totals over a span
        self.overview = pages.TTLCache(2.0)  # polled every 5 s by each open overview
        self.pngs = _PNGCache()


def _caches(request: Request) -> _Caches:
    # kept on the app (not the module): two apps in one process never share answers
    caches = getattr(request.app.state, "dashboard_caches", None)
    if caches is None:
        caches = request.app.state.dashboard_caches = _Caches()
    return caches


def _service(request: Request) -> Any:
    return request.app.state.service


def _now(request: Request) -> float:
    clock = getattr(_service(request), "now", None)
    return float(clock()) if callable(clock) else time.time()


def _statuses(request: Request, now: float) -> dict[str, Any] | None:
    service = _service(request)
    return _caches(request).status.get(int(now // 3), lambda: pages.schedule_status(service, now))


def _page(request: Request, name: str, **context: Any) -> Any:
    return _templates.TemplateResponse(request, name, {"version": __version__, **context})


# --- pages ---------------------------------------------------------------------------------------


@router.get("/stations", response_class=HTMLResponse, include_in_schema=False)
def stations_page(request: Request) -> Any:
    return _page(request, "dash_stations.html", active="stations")


@router.get("/stations/{code}", response_class=HTMLResponse, include_in_schema=False)
def station_charts_page(request: Request, code: str) -> Any:
    return _page(request, "dash_station.html", active="stations", subject=code)


@router.get("/clients", response_class=HTMLResponse, include_in_schema=False)
def clients_page(request: Request) -> Any:
    return _page(request, "dash_clients.html", active="clients")


@router.get("/clients/{direction}/{client}", response_class=HTMLResponse, include_in_schema=False)
def client_charts_page(request: Request, direction: str, client: str) -> Any:
    return _page(request, "dash_client.html", active="clients", subject=f"{direction}/{client}", direction=direction,
                 client=client)


@router.get("/hosts", response_class=HTMLResponse, include_in_schema=False)
def hosts_page(request: Request) -> Any:
    return _page(request, "dash_hosts.html", active="hosts")


@router.get("/hosts/{host}", response_class=HTMLResponse, include_in_schema=False)
def host_charts_page(request: Request, host: str) -> Any:
    return _page(request, "dash_host.html", active="hosts", subject=host)


@router.get("/graphs", response_class=HTMLResponse, include_in_schema=False)
@router.get("/graphs/{period}", response_class=HTMLResponse, include_in_schema=False)
def period_page(request: Request, period: str = "day") -> Any:
    pages.periods(period, now=_now(request))  # 404 for an unknown period
    return _page(request, "dash_periods.html", active="graphs", period=period, period_names=list(pages.PERIODS))


# --- page data -----------------------------------------------------------------------------------


@router.get("/api/v1/dashboard/overview", tags=["pages"], summary="The overview's numbers, each with its detail page")
def overview_data(request: Request) -> Any:
    now = _now(request)
    service = _service(request)
    return _caches(request).overview.get(None, lambda: pages.overview(service, now=now,
                                                                      statuses=_statuses(request, now)))


@router.get("/api/v1/dashboard/stations", tags=["pages"], summary="One page of stations (search, status filter)")
def stations_data(request: Request, search: str | None = None, status: str | None = None, sort: str = "code",
                  offset: int = 0, limit: int = pages.PAGE_SIZE) -> Any:
    now = _now(request)
    return pages.station_list(_service(request), search=search, status=status, sort=sort, offset=offset, limit=limit,
                              now=now, statuses=_statuses(request, now))


@router.get("/api/v1/dashboard/stations/{code}", tags=["pages"], summary="A station's chart, gaps and newest entries")
def station_data(request: Request, code: str, span: str | None = None, start: Time = None, end: Time = None) -> Any:
    now = _now(request)
    return pages.station_page(_service(request), code, pages.span_of(span, start, end, now=now), now=now)


@router.get("/api/v1/dashboard/clients", tags=["pages"], summary="Every transfer client with its totals over a span")
def clients_data(request: Request, span: str | None = None, search: str | None = None) -> Any:
    now = _now(request)
    s = pages.span_of(span, None, None, now=now)
    service = _service(request)
    rows = _caches(request).clients.get((s.seconds, int(now // 15)), lambda: pages.client_list(service, s, now=now))
    if search:
        rows = {**rows, "clients": [r for r in rows["clients"] if search.lower() in r["client"].lower()]}
        rows["count"] = len(rows["clients"])
    return rows


@router.get("/api/v1/dashboard/clients/{direction}/{client}", tags=["pages"],
            summary="A transfer client's MetPX charts, per machine and per product")
def client_data(request: Request, direction: str, client: str, span: str | None = None, start: Time = None,
                end: Time = None) -> Any:
    now = _now(request)
    return pages.client_page(_service(request), direction, client, pages.span_of(span, start, end, now=now), now=now)


@router.get("/api/v1/dashboard/hosts", tags=["pages"], summary="Every host at a glance")
def hosts_data(request: Request, search: str | None = None) -> Any:
    return pages.host_list(_service(request), now=_now(request), search=search)


@router.get("/api/v1/dashboard/hosts/{host}", tags=["pages"], summary="A host's metric charts")
def host_data(request: Request, host: str, span: str | None = None, start: Time = None, end: Time = None) -> Any:
    now = _now(request)
    return pages.host_page(_service(request), host, pages.span_of(span, start, end, now=now), now=now)


@router.get("/api/v1/dashboard/periods/{period}", tags=["pages"],
            summary="A MetPX-style period page: its periods and one page of clients, stations or hosts")
def periods_data(request: Request, period: str, kind: str = "clients", search: str | None = None, offset: int = 0,
                 limit: int = 25) -> Any:
    now = _now(request)
    return {"period": period, "now": iso(now), "periods": pages.periods(period, now=now),
            **pages.period_subjects(_service(request), kind, search=search, offset=offset, limit=limit)}


# --- PNG graphs ----------------------------------------------------------------------------------


class _PNGCache:
    """Rendered PNGs by what they show and the data version: a page of thumbnails reloaded
    within the minute costs no drawing."""

    def __init__(self, size: int = 96) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[bytes, str]] = OrderedDict()

    def get(self, key: str) -> tuple[bytes, str] | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: str, png: bytes) -> tuple[bytes, str]:
        etag = '"' + hashlib.sha1(png).hexdigest()[:20] + '"'
        with self._lock:
            self._items[key] = (png, etag)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return png, etag


def _data_version(service: Any) -> tuple[int, int]:
    """Changes whenever anything is written or reverted: the newest batch id (every ingest,
    series write and push round makes one) and the series generation (bumped by reverts too)."""
    with service.store._read() as conn:
        batch = conn.execute("SELECT coalesce(max(id), 0) FROM batches").fetchone()[0]
        try:
            gen = conn.execute("SELECT generation FROM series_generation").fetchone()[0]
        except sqlite3.OperationalError:  # a store without series tables
            gen = 0
    return int(batch), int(gen)


@router.get("/graph.png", tags=["graphs"], summary="A PNG graph of a series, transfer client(s), host or station",
            response_class=Response, responses={200: {"content": {"image/png": {}}}, 304: {}})
async def graph_png(request: Request, series: str | None = None, client: Many = None, host: str | None = None,
                    station: str | None = None, span: str | None = None, start: Time = None, end: Time = None,
                    stat: str = "mean", machine: str | None = None, product: str | None = None, param: Many = None,
                    width: int = 1000, height: int = 150) -> Response:
    """Exactly one of ``series`` (a name or glob), ``client`` (tx/NAME, rx/NAME or NAME;
    repeat for several in one image), ``host`` or ``station``.  The span: ``span`` (24h, 7d,
    day, week, month, year) back from ``end`` (default now), or ``start`` and ``end``.
    ``width`` in pixels, ``height`` per panel.  Answers with an ETag and Cache-Control, and
    304 to a matching If-None-Match."""
    from telmon.graphs import draw_chart

    service = _service(request)
    now = _now(request)
    live = end in (None, "", "now")
    if live:
        # graphs ending "now" end on the next whole minute: the same image for the rest of it
        now = math.ceil(now / 60) * 60
    clients = [c for v in (client or []) for c in v.split(",") if c.strip()]
    params = [p for v in (param or []) for p in v.split(",") if p.strip()]
    given = [k for k, v in (("series", series), ("client", clients), ("host", host), ("station", station)) if v]
    if len(given) != 1:
        raise BadRequest("give exactly one of series, client, host or station", field="series")
    s = pages.span_of(span, start, end, now=now, default="24h")
    canonical = repr((given[0], series, sorted(clients), host, station, s.start, s.end, stat, machine, product,
                      sorted(params), width, height))
    key = hashlib.sha1(f"{canonical}{_data_version(service)}".encode()).hexdigest()
    pngs = _caches(request).pngs
    hit = pngs.get(key)
    if hit is None:
        png = await run_in_threadpool(draw_chart, service.store, service.series, kind=given[0], series=series,
                                      clients=clients, host=host, station=station, span=s, now=now, stat=stat,
                                      machine=machine, product=product, params=params or None, width=width,
                                      panel_height=height)
        hit = pngs.put(key, png)
    png, etag = hit
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={60 if live else 600}",
               "Last-Modified": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(min(s.end, now)))}
    if etag in (request.headers.get("if-none-match") or ""):
        return Response(status_code=304, headers=headers)
    return Response(png, media_type="image/png", headers=headers)


__all__ = ["SPANS", "router"]
