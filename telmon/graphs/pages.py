"""What each dashboard page shows, as JSON-ready dicts: library functions the routes wrap.

Every function takes the service's parts and ``now``; nothing here knows HTTP.  Lists are
paginated and searched on the server, so a page stays small with 10,000 stations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from telmon import query
from telmon.errors import BadRequest, NotFound
from telmon.graphs import catalog
from telmon.graphs.model import Span, parse_graph_span
from telmon.graphs.sources import client_chart, host_chart
from telmon.graphs.stations import station_chart
from telmon.tail.names import DIRECTIONS
from telmon.timeutil import iso

PAGE_SIZE = 50
MAX_PAGE = 500


class TTLCache:
    """A few expensive answers (every station's status, every client's totals) kept for a few
    seconds: a dashboard polled by many browsers then costs one computation per interval."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._items: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and self.clock() - hit[0] < self.ttl:
                return hit[1]
        value = compute()
        with self._lock:
            if len(self._items) > 64:
                self._items.clear()
            self._items[key] = (self.clock(), value)
        return value


def _settings(service: Any) -> Any:
    from telmon.schedule.settings import ScheduleSettings

    return ScheduleSettings.from_config(getattr(service, "config", None))


def schedule_status(service: Any, now: float) -> dict[str, Any] | None:
    """The schedule component's status of every station (None when its tables are absent)."""
    from telmon.schedule import query as sq

    try:
        return sq.status(service.store, now=now, settings=_settings(service))
    except NotFound:
        return None


# --- overview -------------------------------------------------------------------------------------


def overview(service: Any, *, now: float, statuses: dict[str, Any] | None) -> dict[str, Any]:
    """The overview's numbers: arrivals and stations updated in the last hour, stations by
    status, rejected files, transfer totals (last hour), hosts at a glance."""
    store, ss = service.store, service.series
    with store._read() as conn:
        arrivals_hour = conn.execute("SELECT count(*) FROM arrivals WHERE received_at >= ? AND received_at < ?",
                                     (now - 3600, now + 1)).fetchone()[0]
        rejected_day = conn.execute("SELECT count(*) FROM rejections WHERE received_at >= ?", (now - 86400,)).fetchone()[0]
    status = service.status()
    hosts = catalog.hosts_glance(store, ss, now=now)
    return {
        "now": iso(now),
        "counts": status["counts"],
        "ingest": status["ingest"],
        "watchers": status["watchers"],
        "arrivals_last_hour": arrivals_hour,
        "updated_last_hour": query.stations_updated(store, now - 3600, now, now=now)["count"],
        "rejected_last_day": rejected_day,
        "stations_by_status": statuses["counts"] if statuses else None,
        "stations_total": statuses["total"] if statuses else status["counts"]["stations"],
        "transfers_last_hour": catalog.transfer_total(ss, now - 3600, now, now=now),
        "transfer_clients": len(catalog.transfer_clients(ss)),
        "hosts": hosts[:50],
        "hosts_total": len(hosts),
        "recent": query.files_recent(store, limit=12),
        "rejected": query.rejected(store, limit=8)["rejected"],
    }


# --- stations ------------------------------------------------------------------------------------


_SORTS = {"code": "code", "recent": "last_arrival_at IS NULL, last_arrival_at DESC, code",
          "oldest": "last_arrival_at IS NOT NULL, last_arrival_at, code"}
_LIST_COLUMNS = ("code, name, kind, last_arrival_at, last_entry_at, coalesce(interval_s, inferred_interval_s), "
                 "arrival_count, entry_count")


def station_list(service: Any, *, search: str | None = None, status: str | None = None, sort: str = "code",
                 offset: int = 0, limit: int = PAGE_SIZE, now: float, statuses: dict[str, Any] | None) -> dict[str, Any]:
    """One page of stations (code or name containing ``search``; ``status`` one of the
    schedule's status words; ``sort``: code, recent (newest arrival first) or oldest), with
    the total that match, for pagination."""
    limit = max(1, min(int(limit), MAX_PAGE))
    offset = max(0, int(offset))
    if sort not in _SORTS:
        raise BadRequest(f"sort must be one of {', '.join(_SORTS)}", field="sort")
    text = (search or "").strip().lower()
    by_code = {r["station"]: r for r in statuses["stations"]} if statuses else {}
    where, params = [], []
    if text:
        where.append("(lower(code) LIKE ? OR lower(name) LIKE ?)")
        params += [f"%{text}%", f"%{text}%"]
    if status:
        if statuses is None:
            raise BadRequest("status needs the schedule tables (no schedule data in this store)", field="status")
        codes = [r["station"] for r in statuses["stations"] if r["status"] == status]
        # the status is computed in Python (it depends on now); filter with a temp list
        where.append("code IN (SELECT value FROM json_each(?))")
        params.append(orjson.dumps(codes).decode())
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    with service.store._read() as conn:
        total = conn.execute(f"SELECT count(*) FROM stations {clause}", params).fetchone()[0]
        rows = conn.execute(f"SELECT id, {_LIST_COLUMNS} FROM stations {clause} ORDER BY {_SORTS[sort]} "
                            "LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
        strips = _hourly_arrivals(conn, [r[0] for r in rows], now)
    out = []
    for sid, code, name, kind, last_arrival, last_entry, interval, arrivals, entries in rows:
        st = by_code.get(code, {})
        out.append({"station": code, "name": name, "kind": kind, "status": st.get("status"),
                    "last_arrival": iso(last_arrival), "last_entry": iso(last_entry), "interval_s": interval,
                    "arrivals": arrivals, "entries": entries, "feed": st.get("feed"),
                    "last_24h": strips.get(sid, [0] * 24)})
    return {"total": total, "offset": offset, "limit": limit, "search": search or "", "status": status or "",
            "sort": sort, "now": iso(now), "stations": out, "statuses": statuses["counts"] if statuses else None}


def _hourly_arrivals(conn: Any, sids: list[int], now: float) -> dict[int, list[int]]:
    """Arrivals per hour over the last 24 hours (oldest first) of a page of stations: the
    list's heartbeat strip.  One grouped read on the (station, received_at) index."""
    if not sids:
        return {}
    t0 = now - 86400
    out: dict[int, list[int]] = {}
    marks = ",".join("?" * len(sids))
    for sid, hour, n in conn.execute(
            f"SELECT station_id, CAST((received_at - ?) / 3600 AS INTEGER), count(*) FROM arrivals "
            f"WHERE station_id IN ({marks}) AND received_at >= ? AND received_at < ? GROUP BY 1, 2",
            [t0, *sids, t0, now]):
        if 0 <= hour < 24:
            out.setdefault(sid, [0] * 24)[hour] = n
    return out


def station_page(service: Any, code: str, span: Span, *, now: float) -> dict[str, Any]:
    """A station's facts, its chart over the span (lateness, arrivals, parameters, gaps shaded),
    its gaps in the span and its newest time entries."""
    info = query.station_detail(service.store, code)
    chart = station_chart(service.store, code, span, now=now)
    gaps = query.station_gaps(service.store, span.start, span.end, [code], now=now)["stations"]
    with service.store._read() as conn:
        rows = conn.execute(
            "SELECT e.observed_at, e.vals, e.first_seen_at FROM entries e JOIN stations s ON s.id = e.station_id "
            "WHERE s.code = ? AND e.observed_at < ? ORDER BY e.observed_at DESC LIMIT 20", (code, span.end)).fetchall()
    return {
        "station": info, "now": iso(now), "chart": chart.to_json(),
        "gaps": gaps[0]["gaps"][-50:] if gaps else [], "missing": gaps[0]["missing"] if gaps else 0,
        "recent_entries": [{"observed_at": iso(t), "values": orjson.loads(v) if v else {}, "first_seen_at": iso(s)}
                           for t, v, s in rows],
    }


# --- transfer clients -----------------------------------------------------------------------------


def client_list(service: Any, span: Span, *, now: float, search: str | None = None) -> dict[str, Any]:
    rows = catalog.client_totals(service.series, span.start, span.end, now=now)
    if search:
        rows = [r for r in rows if search.lower() in r["client"].lower()]
    return {"start": iso(span.start), "end": iso(span.end), "now": iso(now), "count": len(rows), "clients": rows}


def client_page(service: Any, direction: str, client: str, span: Span, *, now: float) -> dict[str, Any]:
    if direction not in DIRECTIONS:
        raise BadRequest(f"direction must be tx or rx, not {direction!r}", field="direction")
    chart = client_chart(service.series, [f"{direction}/{client}"], span, now=now)
    from telmon.tail.query import transfers

    by_machine = transfers(service.series, clients=[client], directions=[direction], start=span.start, end=span.end,
                           by=["machine"], now=now)["rows"]
    by_product = transfers(service.series, clients=[client], directions=[direction], start=span.start, end=span.end,
                           by=["product"], now=now)["rows"]
    return {"direction": direction, "client": client, "now": iso(now), "chart": chart.to_json(),
            "machines": by_machine, "products": by_product}


# --- hosts ------------------------------------------------------------------------------------------


def host_list(service: Any, *, now: float, search: str | None = None) -> dict[str, Any]:
    rows = catalog.hosts_glance(service.store, service.series, now=now)
    if search:
        rows = [r for r in rows if search.lower() in r["host"].lower()]
    return {"now": iso(now), "count": len(rows), "hosts": rows}


def host_page(service: Any, host: str, span: Span, *, now: float) -> dict[str, Any]:
    names = catalog.host_names(service.store, service.series)
    chart = host_chart(service.series, host, span, now=now, hosts=names)
    latest = []
    for p in chart.panels:
        for ln in p.lines:
            if ln.faint:
                continue
            finite = [v for v in ln.values.tolist() if v == v]
            latest.append({"panel": p.title, "metric": ln.label, "unit": p.unit, "last": finite[-1] if finite else None,
                           "summary": ln.summary.to_json() if ln.summary else None})
    return {"host": host, "now": iso(now), "chart": chart.to_json(), "latest": latest}


# --- MetPX-like day / week / month / year pages ---------------------------------------------------------

PERIODS = {"day": 7, "week": 5, "month": 3, "year": 3}  # how many of each, as MetPX's pages had


def periods(period: str, *, now: float) -> list[dict[str, Any]]:
    """The calendar periods of a MetPX-style page, newest first: the past 7 UTC days (today
    so far first), 5 ISO weeks, 3 months or 3 years."""
    if period not in PERIODS:
        raise NotFound("period page", period)
    t = datetime.fromtimestamp(now, timezone.utc)
    out = []
    if period == "day":
        day = t.replace(hour=0, minute=0, second=0, microsecond=0)
        starts = [day - timedelta(days=k) for k in range(PERIODS[period])]
        spans = [(s, s + timedelta(days=1), s.strftime("%a %d %b")) for s in starts]
    elif period == "week":
        monday = (t - timedelta(days=t.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        starts = [monday - timedelta(weeks=k) for k in range(PERIODS[period])]
        spans = [(s, s + timedelta(weeks=1), f"week {s.isocalendar()[1]:02d} ({s:%d %b})") for s in starts]
    elif period == "month":
        spans = []
        y, m = t.year, t.month
        for _ in range(PERIODS[period]):
            s = datetime(y, m, 1, tzinfo=timezone.utc)
            e = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=timezone.utc)
            spans.append((s, e, s.strftime("%b %Y")))
            y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    else:
        spans = [(datetime(t.year - k, 1, 1, tzinfo=timezone.utc), datetime(t.year - k + 1, 1, 1, tzinfo=timezone.utc),
                  str(t.year - k)) for k in range(PERIODS[period])]
    for s, e, label in spans:
        a, b = s.timestamp(), min(e.timestamp(), now)
        out.append({"label": label, "start": iso(a), "end": iso(b), "start_t": a, "end_t": b,
                    "current": e.timestamp() > now})
    return out


def period_subjects(service: Any, kind: str, *, search: str | None = None, offset: int = 0,
                    limit: int = 25) -> dict[str, Any]:
    """One page of the clients, stations or hosts a period page lists."""
    limit = max(1, min(int(limit), 200))
    offset = max(0, int(offset))
    text = (search or "").strip().lower()
    if kind == "clients":
        items = [{"id": f"{d}/{c}", "label": f"{d} {c}", "param": "client"}
                 for d, c in catalog.transfer_clients(service.series) if not text or text in c.lower()]
        total, page = len(items), items[offset:offset + limit]
    elif kind == "hosts":
        items = [{"id": h, "label": h, "param": "host"} for h in catalog.host_names(service.store, service.series)
                 if not text or text in h.lower()]
        total, page = len(items), items[offset:offset + limit]
    elif kind == "stations":
        where, params = "", []
        if text:
            where, params = "WHERE code LIKE ? OR name LIKE ?", [f"%{text}%", f"%{text}%"]
        with service.store._read() as conn:
            total = conn.execute(f"SELECT count(*) FROM stations {where}", params).fetchone()[0]
            rows = conn.execute(f"SELECT code, name FROM stations {where} ORDER BY code LIMIT ? OFFSET ?",
                                [*params, limit, offset]).fetchall()
        page = [{"id": c, "label": f"{c} {n}" if n else c, "param": "station"} for c, n in rows]
    else:
        raise BadRequest("kind must be clients, stations or hosts", field="kind")
    return {"kind": kind, "total": total, "offset": offset, "limit": limit, "subjects": page}


def span_of(span: str | None, start: str | None, end: str | None, *, now: float, default: str = "day") -> Span:
    return parse_graph_span(span, start, end, now=now, default=default)
