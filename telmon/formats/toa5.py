"""Campbell Scientific TOA5 data files (FORMATS.md "Campbell Scientific TOA5"; samples/goes/toa5).

::

    "TOA5","TestLogger","CR1000X","12342","CR1000X.Std.03.02","CPU:TestLogger.CR1X","2438","Hourly"
    "TIMESTAMP","RECORD","BattV","AirT_C(42)"
    "TS","RN","Volts","Deg C"
    "","","Avg","Smp"
    "2021-06-18 21:00:00",10,13.23,26.29

One Unit per file, station = the station field of line 1.  TIMESTAMP is logger time without a
zone: the zone is ``options.tz[station]``, else ``options.default_tz`` (IANA name or a fixed
offset such as ``-05:00``).  RECORD is not a value; jumps in it are listed in
``meta["record_gaps"]``.
"""

from __future__ import annotations

import csv
import math
import re
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from telmon.model import Entry, ParseOptions, ParseResult, Problem, Unit

NAME = "toa5"
_MAX_PROBLEMS = 200
_HEADER_LINES = 4
_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$")
_TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?$")
_MISSING = frozenset({"NAN", "-INF", "INF", "+INF", ""})
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def sniff(head: bytes) -> bool:
    """True when line 1 starts with the TOA5 file-type field."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b'"TOA5"', b"TOA5,"))


def zone(name: str) -> tzinfo | None:
    """'UTC', 'America/Chicago', '-05:00', '+0530' -> a tzinfo; None when unknown."""
    name = name.strip()
    if name.upper() in ("UTC", "Z", "GMT", ""):
        return timezone.utc
    m = _OFFSET.match(name)
    if m:
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 23 or minutes > 59:
            return None
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if m.group(1) == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def parse(data: bytes, *, name: str = "", options: ParseOptions | None = None) -> ParseResult:
    """The file's one Unit; a Problem for each row that cannot be read (the rest is kept)."""
    result = ParseResult()
    problems = result.problems
    if not data.strip():
        problems.append(Problem("empty file" if not data else "empty file: only blank lines"))
        return result
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # older loggers write units such as "°C" in latin-1
    lines = text.lstrip("\ufeff").split("\n")
    header = [_row(line) for line in lines[:_HEADER_LINES]]
    if len(header) < _HEADER_LINES or any(row is None for row in header):
        problems.append(Problem("TOA5 file needs 4 readable header lines (file, fields, units, processing)"))
        return result
    info, fields, units, processing = header  # type: ignore[misc]
    if not info or info[0] != "TOA5" or len(info) < 2 or not info[1].strip():
        problems.append(Problem('TOA5 line 1 must be "TOA5",station,...', line=1))
        return result
    station = info[1].strip()
    if "TIMESTAMP" not in fields:
        problems.append(Problem("TOA5 field names (line 2) have no TIMESTAMP", line=2))
        return result
    options = options or ParseOptions()
    zone_name = options.tz.get(station, options.default_tz)
    tz = zone(zone_name)
    if tz is None:
        problems.append(Problem(f"unknown time zone {zone_name!r} for TOA5 station {station!r}"))
        return result
    t_col = fields.index("TIMESTAMP")
    r_col = fields.index("RECORD") if "RECORD" in fields else None
    value_cols = [(i, f) for i, f in enumerate(fields) if i not in (t_col, r_col)]
    values: dict[float, dict[str, float | None]] = {}
    gaps: list[dict[str, int]] = []
    non_numeric: set[str] = set()
    last_record: int | None = None
    dropped = 0

    def problem(reason: str, line: int) -> None:
        nonlocal dropped
        if len(problems) < _MAX_PROBLEMS:
            problems.append(Problem(reason, line=line))
        else:
            dropped += 1

    for lineno, line in enumerate(lines[_HEADER_LINES:], _HEADER_LINES + 1):
        if not line.strip():
            continue
        row = _row(line)
        if row is None:
            problem("TOA5 row is not readable CSV", lineno)
            continue
        if len(row) != len(fields):
            problem(f"TOA5 row has {len(row)} fields, the header names {len(fields)}", lineno)
            continue
        when = _time(row[t_col], tz)
        if when is None:
            problem(f"bad TOA5 TIMESTAMP {row[t_col][:40]!r}: expected YYYY-MM-DD HH:MM:SS", lineno)
            continue
        if r_col is not None:
            record = row[r_col].strip()
            if not (record.isascii() and record.isdigit()):
                problem(f"bad TOA5 RECORD {record[:40]!r}: expected a whole number", lineno)
                continue
            number = int(record)
            if last_record is not None and number != last_record + 1:
                gaps.append({"after": last_record, "next": number, "line": lineno})
            last_record = number
        row_values: dict[str, float | None] = {}
        for i, fname in value_cols:
            row_values[fname] = _number(row[i], fname, non_numeric)
        values[when] = row_values
    if dropped:
        problems.append(Problem(f"{dropped} more bad rows not listed"))
    for fname in sorted(non_numeric):
        problems.append(Problem(f"TOA5 field {fname!r} holds text, not numbers: stored as missing"))
    if not values:
        problems.append(Problem("TOA5 file has no data rows"))
    meta: dict[str, object] = {
        "logger": _at(info, 2), "serial": _at(info, 3), "os": _at(info, 4), "program": _at(info, 5),
        "signature": _at(info, 6), "table": _at(info, 7), "tz": zone_name,
        "units": {f: _at(units, i) for i, f in value_cols},
        "processing": {f: _at(processing, i) for i, f in value_cols},
        "record_gaps": gaps,
    }
    entries = [Entry(t, v) for t, v in values.items()]
    result.units.append(Unit(station, entries, meta=meta, offset=0, length=len(data)))
    return result


def _row(line: str) -> list[str] | None:
    """One CSV line -> its fields; None if it cannot be read (NUL bytes, a stray quote)."""
    if "\x00" in line:
        return None  # the csv module refuses NUL bytes
    try:
        return next(csv.reader((line.rstrip("\r"),), strict=True), [])
    except csv.Error:
        return None


def _at(row: list[str], i: int) -> str | None:
    return row[i] if i < len(row) else None


def _time(text: str, tz: tzinfo) -> float | None:
    m = _TIMESTAMP.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac = m.groups()
    try:
        local = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), tzinfo=tz)
        return (local - _EPOCH).total_seconds() + (float(frac) if frac else 0.0)
    except (ValueError, OverflowError):
        return None


def _number(text: str, field: str, non_numeric: set[str]) -> float | None:
    text = text.strip()
    if text.upper() in _MISSING:
        return None
    try:
        value = float(text)
    except ValueError:
        non_numeric.add(field)
        return None
    return value if math.isfinite(value) else None
