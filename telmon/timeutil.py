"""Time in and out: ISO 8601 with a zone (naive means UTC) or epoch seconds in; ISO 8601 UTC out.

Internally every instant is a float of epoch seconds, UTC.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from telmon.errors import InvalidTime

_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w|y)?$")
_SPAN_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}

# Instants past this are refused as input: they are typos, not telemetry.
_MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z


def parse_time(value: object, *, field: str | None = None) -> float:
    """Read an instant: epoch seconds (int, float or digits) or ISO 8601; naive means UTC.

    Raises InvalidTime with a message that says which forms are accepted.
    """
    if isinstance(value, bool):
        raise InvalidTime(value, field=field)
    if isinstance(value, (int, float)):
        t = float(value)
    elif isinstance(value, datetime):
        t = _from_datetime(value)
    elif isinstance(value, str):
        s = value.strip()
        if not s:
            raise InvalidTime(value, field=field)
        if _NUMBER.match(s):
            t = float(s)
        else:
            if s.endswith(("Z", "z")):
                s = s[:-1] + "+00:00"
            try:
                t = _from_datetime(datetime.fromisoformat(s))
            except ValueError:
                raise InvalidTime(value, field=field) from None
    else:
        raise InvalidTime(value, field=field)
    if t != t or abs(t) > _MAX_EPOCH:
        raise InvalidTime(value, field=field)
    return t


def _from_datetime(dt: datetime) -> float:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def iso(t: float | None) -> str | None:
    """Epoch seconds -> ISO 8601 UTC with a Z, whole seconds unless there is a fraction."""
    if t is None:
        return None
    dt = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=t)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_span(value: str | float | int) -> float:
    """'90' / '15m' / '24h' / '7d' -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value <= 0:
            raise InvalidTime(value)
        return float(value)
    m = _SPAN.match(str(value).strip().lower())
    if not m:
        raise InvalidTime(value)
    seconds = float(m.group(1)) * _SPAN_SECONDS[m.group(2)]
    if seconds <= 0:
        raise InvalidTime(value)
    return seconds


def utc_datetime(t: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=t)
