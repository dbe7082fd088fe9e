"""USGS EDL telemetry files (FORMATS.md "USGS EDL telemetry files"; samples/telmon/*.edl).

::

    //SOURCE nwiswa EDL
    //STATION 12113390
    //DEVICE GRFILTF-1
    //OVERWRITE true
    "2018/02/19 02:00", 3188.3097222222264

One station per file, so one Unit per file.  Values are stored under the DEVICE name (else
"value").  The old parser broke on blank lines, empty files and spacing changes; this one
tolerates them and turns each bad line into a Problem while keeping the rest.
"""

from __future__ import annotations

import math
from datetime import date

from telmon.model import Entry, ParseOptions, ParseResult, Problem, Unit

NAME = "edl"
_MAX_PROBLEMS = 200
_KNOWN_KEYS = (b"//SOURCE", b"//STATION", b"//DEVICE", b"//OVERWRITE")
_BAD_LINE = 'bad EDL data line: expected "YYYY/MM/DD HH:MM", value'
# Validated lookups instead of int(): int() would accept " 7", "+7" and "0_7".
_HOURS = {f"{h:02d}": h * 3600 for h in range(24)}
_MINUTES = {f"{m:02d}": m * 60 for m in range(60)}
_TRUE = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def sniff(head: bytes) -> bool:
    """True when the first non-blank line is an EDL header (``//STATION`` ...) or data line."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.upper().startswith(_KNOWN_KEYS):
        return True
    line = text.split(b"\n", 1)[0].strip()
    return (
        len(line) >= 19 and line[0:1] == b'"' and line[5:6] == b"/" and line[8:9] == b"/"
        and line[14:15] == b":" and line[17:18] == b'"' and line[1:5].isdigit()
    )


def parse(data: bytes, *, name: str = "", options: ParseOptions | None = None) -> ParseResult:
    """The file's one Unit (station = STATION header) and a Problem per line it could not read."""
    result = ParseResult()
    if not data.strip():
        result.problems.append(Problem("empty file" if not data else "empty file: only blank lines"))
        return result
    problems = result.problems
    dropped = 0
    headers: dict[str, str] = {}
    header_lines: dict[str, int] = {}
    values: dict[float, float | None] = {}
    days: dict[str, float | None] = {}  # "YYYY/MM/DD" -> epoch of 00:00 UTC (None: not a date)
    text = data.decode("utf-8", "replace").lstrip("\ufeff")
    hours, minutes = _HOURS.get, _MINUTES.get  # local names: this loop is the hot path
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        reason = None
        if line[0] == '"':
            # Fast path: split at fixed positions, no regex (thousands of files a second).
            q = line.find('"', 1)
            rest = line[q + 1 :].lstrip() if q == 17 else ""
            if rest[:1] != ",":
                reason = _BAD_LINE
            else:
                ts = line[1:17]
                day = days.get(ts[:10])
                if day is None and ts[:10] not in days:
                    day = days[ts[:10]] = _day(ts[:10])
                hour = hours(ts[11:13])
                minute = minutes(ts[14:16])
                if day is None or hour is None or minute is None or ts[10] != " " or ts[13] != ":":
                    reason = f"bad EDL time {ts!r}: expected a real UTC date and time YYYY/MM/DD HH:MM"
                else:
                    try:
                        value: float | None = float(rest[1:])
                    except ValueError:
                        reason = f"bad EDL value {rest[1:].strip()[:40]!r}: expected a number"
                    else:
                        if value != value:
                            value = None  # NaN: a missing value
                        elif math.isinf(value):
                            reason = f"bad EDL value {rest[1:].strip()!r}: infinite"
                        if reason is None:
                            values[day + hour + minute] = value
        elif line.startswith("//"):
            key, _, rest = line[2:].partition(" ")
            key = key.strip().upper()
            rest = rest.strip()
            if not key:
                reason = "bad EDL header line: expected //KEY value"
            elif key in headers and headers[key] != rest:
                reason = (
                    f"EDL header //{key} {rest[:40]!r} contradicts {headers[key]!r} "
                    f"on line {header_lines[key]}: the first is kept"
                )
            else:
                headers[key] = rest
                header_lines[key] = lineno
        else:
            reason = f"{_BAD_LINE}, got {line[:40]!r}"
        if reason is not None:
            if len(problems) < _MAX_PROBLEMS:
                problems.append(Problem(reason, line=lineno))
            else:
                dropped += 1
    if dropped:
        problems.append(Problem(f"{dropped} more bad lines not listed"))

    station = headers.get("STATION", "")
    if not station:
        problems.append(Problem("EDL file has no //STATION header: cannot tell whose data it is"))
        return result
    overwrite = True
    if "OVERWRITE" in headers:
        flag = _TRUE.get(headers["OVERWRITE"].lower())
        if flag is None:
            problems.append(
                Problem(
                    f"EDL //OVERWRITE {headers['OVERWRITE'][:40]!r} is not true or false: true is used",
                    line=header_lines["OVERWRITE"],
                )
            )
        else:
            overwrite = flag
    parameter = headers.get("DEVICE") or "value"
    meta: dict[str, object] = {"source": headers.get("SOURCE"), "device": headers.get("DEVICE")}
    for key, value in headers.items():
        if key not in ("SOURCE", "DEVICE", "STATION", "OVERWRITE"):
            meta[key.lower()] = value
    if not values:
        problems.append(Problem("EDL file has no data lines"))
    entries = [Entry(t, {parameter: v}) for t, v in values.items()]
    result.units.append(Unit(station, entries, meta=meta, offset=0, length=len(data), overwrite=overwrite))
    return result


def _day(text: str) -> float | None:
    """'2018/02/19' -> epoch seconds of that day's 00:00 UTC; None if it is not a real date."""
    y, m, d = text[0:4], text[5:7], text[8:10]
    if len(text) != 10 or text[4] != "/" or text[7] != "/":
        return None
    if not (y.isascii() and y.isdigit() and m.isascii() and m.isdigit() and d.isascii() and d.isdigit()):
        return None
    try:
        return (date(int(y), int(m), int(d)).toordinal() - _EPOCH_ORDINAL) * 86400.0
    except ValueError:
        return None
