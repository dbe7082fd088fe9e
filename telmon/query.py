"""The five station questions, as library functions over a Store.

Each takes raw caller input (strings or numbers), validates it (BadRequest on anything
wrong) and returns JSON-ready dicts with ISO 8601 UTC times. The HTTP API and the CLI are
thin wrappers over these.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from telmon.errors import BadRequest, NotFound
from telmon.store.base import Store
from telmon.timeutil import iso, parse_time

MAX_LIMIT = 10_000
MAX_STATIONS = 1_000


def _span(start: object, end: object, *, now: float, default_span: float | None = None) -> tuple[float, float]:
    t_end = now if end is None or end == "" else parse_time(end, field="end")
    if start is None or start == "":
        if default_span is None:
            raise BadRequest("start is required", field="start")
        t_start = t_end - default_span
    else:
        t_start = parse_time(start, field="start")
    if t_start >= t_end:
        raise BadRequest(f"start ({iso(t_start)}) must be before end ({iso(t_end)})", field="start")
    return t_start, t_end


def _optional_time(value: object, field: str) -> float | None:
    return None if value is None or value == "" else parse_time(value, field=field)


def _stations(stations: Iterable[str] | str | None) -> list[str]:
    if stations is None:
        raise BadRequest("give at least one station", field="station")
    if isinstance(stations, str):
        stations = [stations]
    codes: list[str] = []
    for item in stations:
        codes.extend(s.strip() for s in str(item).split(",") if s.strip())
    if not codes:
        raise BadRequest("give at least one station", field="station")
    if len(codes) > MAX_STATIONS:
        raise BadRequest(f"at most {MAX_STATIONS} stations per request", field="station")
    return sorted(set(codes))


def parse_limit(limit: object, default: int, maximum: int = MAX_LIMIT) -> int:
    """A page size from caller input: ``default`` when absent, BadRequest unless 1..maximum."""
    if limit is None or limit == "":
        return default
    try:
        n = int(str(limit))
    except ValueError:
        raise BadRequest(f"limit must be a whole number, got {limit!r}", field="limit") from None
    if not 1 <= n <= maximum:
        raise BadRequest(f"limit must be between 1 and {maximum}", field="limit")
    return n




def encode_cursor(value: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(value))).decode().rstrip("=")


def decode_cursor(cursor: str | None, shape: tuple[type, ...]) -> tuple[Any, ...] | None:
    if not cursor:
        return None
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(shape):
            raise ValueError
        values = tuple(t(v) for t, v in zip(shape, raw))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise BadRequest("cursor is not one this server gave out; start again without it", field="cursor") from None
    return values


def _now(now: float | Callable[[], float] | None) -> float:
    if now is None:
        return time.time()
    return now() if callable(now) else float(now)


# --- 1. stations with file updates between t1 and t2 ---------------------------------
def stations_updated(store: Store, start: object = None, end: object = None, *, now: float | None = None) -> dict[str, Any]:
    t0, t1 = _span(start, end, now=_now(now), default_span=3600.0)
    rows = store.stations_updated(t0, t1)
    for r in rows:
        r["first_arrival"] = iso(r["first_arrival"])
        r["last_arrival"] = iso(r["last_arrival"])
    return {"start": iso(t0), "end": iso(t1), "count": len(rows), "stations": rows}


# --- 2. stations with gaps in their time entries between tA and tB ---------------------
def station_gaps(
    store: Store, start: object = None, end: object = None, stations: Iterable[str] | str | None = None,
    *, now: float | None = None,
) -> dict[str, Any]:
    t_now = _now(now)
    t0, t1 = _span(start, end, now=t_now, default_span=86400.0)
    codes = _stations(stations) if stations else None
    rows = store.station_gaps(t0, t1, codes, now=t_now)
    for r in rows:
        for g in r["gaps"]:
            g["start"], g["end"] = iso(g["start"]), iso(g["end"])
    return {"start": iso(t0), "end": iso(t1), "count": len(rows), "stations": rows}


# --- 3. stations not updated between tA and tB ------------------------------------------
def stations_silent(store: Store, start: object = None, end: object = None, *, now: float | None = None) -> dict[str, Any]:
    t0, t1 = _span(start, end, now=_now(now), default_span=86400.0)
    rows = store.stations_silent(t0, t1)
    for r in rows:
        r["last_arrival"] = iso(r["last_arrival"])
        r["last_entry"] = iso(r["last_entry"])
    return {"start": iso(t0), "end": iso(t1), "count": len(rows), "stations": rows}


# --- 4. update (arrival) times for a list of stations ----------------------------------
def arrivals(
    store: Store, stations: Iterable[str] | str | None, start: object = None, end: object = None,
    *, limit: object = None, cursor: str | None = None,
) -> dict[str, Any]:
    codes = _stations(stations)
    t0, t1 = _optional_time(start, "start"), _optional_time(end, "end")
    n = parse_limit(limit, 1000)
    after = decode_cursor(cursor, (float, int))
    rows = store.arrivals(codes, t0, t1, limit=n, after=after)  # type: ignore[arg-type]
    nxt = encode_cursor([rows[-1]["received_at"], rows[-1]["id"]]) if len(rows) == n else None
    for r in rows:
        for k in ("received_at", "message_time", "first_observed", "last_observed"):
            r[k] = iso(r[k])
    return {"stations": codes, "count": len(rows), "arrivals": rows, "next": nxt}


# --- 5. time entries (and values) for a list of stations --------------------------------
def entries(
    store: Store, stations: Iterable[str] | str | None, start: object = None, end: object = None,
    *, limit: object = None, cursor: str | None = None,
) -> dict[str, Any]:
    codes = _stations(stations)
    t0, t1 = _optional_time(start, "start"), _optional_time(end, "end")
    n = parse_limit(limit, 1000)
    after = decode_cursor(cursor, (str, float))
    rows = store.entries(codes, t0, t1, limit=n, after=after)  # type: ignore[arg-type]
    nxt = encode_cursor([rows[-1]["station"], rows[-1]["observed_at"]]) if len(rows) == n else None
    for r in rows:
        r["observed_at"] = iso(r["observed_at"])
        r["first_seen_at"] = iso(r["first_seen_at"])
    return {"stations": codes, "count": len(rows), "entries": rows, "next": nxt}


# --- listings -----------------------------------------------------------------------------
def station_list(store: Store, *, search: str | None = None, limit: object = None, offset: object = 0) -> dict[str, Any]:
    n = parse_limit(limit, 1000)
    try:
        off = max(0, int(str(offset or 0)))
    except ValueError:
        raise BadRequest(f"offset must be a whole number, got {offset!r}", field="offset") from None
    rows = [_format_station(r) for r in store.stations(search=search or None, limit=n, offset=off)]
    return {"count": len(rows), "offset": off, "stations": rows}


def station_detail(store: Store, code: str) -> dict[str, Any]:
    row = store.station(code)
    if row is None:
        raise NotFound("station", code)
    return _format_station(row)


def _format_station(r: dict[str, Any]) -> dict[str, Any]:
    for k in ("created_at", "first_arrival_at", "last_arrival_at", "first_entry_at", "last_entry_at"):
        r[k] = iso(r[k])
    r["station"] = r.pop("code")
    return r


def rejected(store: Store, *, since: object = None, limit: object = None) -> dict[str, Any]:
    t = _optional_time(since, "since")
    rows = store.rejected(since=t, limit=parse_limit(limit, 100))
    for r in rows:
        r["received_at"] = iso(r["received_at"])
    return {"count": len(rows), "rejected": rows}


def arrivals_recent(store: Store, *, limit: int = 20) -> list[dict[str, Any]]:
    rows = store.recent_arrivals(limit)
    for r in rows:
        r["received_at"] = iso(r["received_at"])
    return rows


def files_recent(store: Store, *, limit: int = 20) -> list[dict[str, Any]]:
    rows = store.recent_files(limit)
    for r in rows:
        r["received_at"] = iso(r["received_at"])
    return rows
