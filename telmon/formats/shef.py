"""SHEF (Standard Hydrometeorologic Exchange Format) .A and .E messages (FORMATS.md "SHEF").

::

    .A FOL 20190401 PS DH0000 /QIH 7390            one time, many parameters
    .E WOOR1 20231019 E DH14/HGIFF/DIH6/2.5/2.4    one parameter, a value every DI
    .E1 /2.3/2.2                                   continuation; .AR/.ER are revisions

One Unit per message (header line and its continuations).  Parameter = the PE code as written
("HG", "HGIFF", "PPHRG").  ``M``, ``MM`` and ``-9999`` are missing values (None), ``T`` (trace)
is 0.001, a letter after a number is a qualifier (kept in meta).  Text lines that do not start
with ``.`` are ignored; ``:`` starts a comment that runs to the next ``:`` or the line end.
.B messages are skipped with one Problem each.

Rules chosen where the message leaves things out (documented, deterministic given ``now``):
- no time zone: Z;  no DH: 12:00 for Z, 24:00 (end of day) for the other zones;
- ``mmdd`` dates take the year that puts the date nearest to ``now`` (within six months);
- two-digit years take the century that puts the year at most 10 years after ``now``'s year.
"""

from __future__ import annotations

import calendar
import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from telmon.model import Entry, ParseOptions, ParseResult, Problem, Unit

NAME = "shef"
_MAX_PROBLEMS = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# SHEF time zone codes: one letter = local time with daylight saving, "xS"/"xD" = fixed
# standard/daylight offsets (minutes).  L/Y/B keep their SHEF meanings (Alaska, Yukon, Bering).
_LOCAL = {
    "N": "America/St_Johns", "A": "America/Halifax", "E": "America/New_York", "C": "America/Chicago",
    "J": "Asia/Shanghai", "M": "America/Denver", "P": "America/Los_Angeles", "Y": "America/Yakutat",
    "L": "America/Anchorage", "H": "Pacific/Honolulu", "B": "America/Nome",
}
_FIXED = {
    "Z": 0, "NS": -210, "ND": -150, "AS": -240, "AD": -180, "ES": -300, "ED": -240, "CS": -360,
    "CD": -300, "JS": 480, "JD": 540, "MS": -420, "MD": -360, "PS": -480, "PD": -420, "YS": -540,
    "YD": -480, "LS": -600, "LD": -540, "HS": -600, "HD": -540, "BS": -660, "BD": -600,
}
_LINE = re.compile(r"^\.([ABE])(R?)(\d*)(?=\s|$)")
_SNIFF = re.compile(rb"(?m)^\.[AE]R?\d*[ \t]+[A-Za-z0-9]{3,8}[ \t]+\d{4,8}\b")
_STATION = re.compile(r"^[A-Z0-9]{3,8}$")
_PE = re.compile(r"^[A-CE-Z][A-Z0-9]{1,6}$")  # D starts date elements, never a parameter
_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))([A-Z])?$")
_DATE_ELEMENT = re.compile(r"^D([SNHDMYTJ])(\d+)$")
_RELATIVE = re.compile(r"^D([RI])([SNHDMYE])([+-]?\d{1,2})$")
# Which two-digit components each date element sets, most significant first.
_PARTS = {"T": "CYMDHNS", "Y": "YMDHNS", "M": "MDHNS", "D": "DHNS", "H": "HNS", "N": "NS", "S": "S"}
_SECONDS = {"S": 1, "N": 60, "H": 3600}
_COMMENT = re.compile(r":[^:]*(?::|$)")
_QUOTED = re.compile(r'"[^"]*(?:"|$)')


class _Bad(Exception):
    """A part of a message that cannot be read; its text is the Problem reason."""


def sniff(head: bytes) -> bool:
    """True when some line looks like a SHEF .A/.E header (junk text may come first)."""
    return _SNIFF.search(head) is not None


def parse(
    data: bytes, *, name: str = "", options: ParseOptions | None = None, now: float | None = None
) -> ParseResult:
    """Every .A/.E message as a Unit; a Problem (with its line) for each part not understood.

    ``now`` (epoch seconds, default the current time) anchors dates given without a year.
    """
    result = ParseResult()
    if not data.strip():
        result.problems.append(Problem("empty file" if not data else "empty file: only blank lines"))
        return result
    parser = _Parser(result, datetime.fromtimestamp(time.time() if now is None else now, timezone.utc))
    offset = 0
    for lineno, raw in enumerate(data.decode("latin-1").split("\n"), 1):
        parser.line(raw.rstrip("\r"), lineno, offset, offset + len(raw))
        offset += len(raw) + 1
    parser.finish()
    return result


@dataclass(slots=True)
class _Message:
    kind: str
    revision: bool
    station: str
    tz: tzinfo
    tz_code: str
    line: int
    offset: int
    end: int
    date: list[int]  # year, month, day, hour (24 = end of day), minute, second
    relative: list[tuple[str, int]] = field(default_factory=list)  # DR offsets
    pe: str | None = None  # .A: waiting for its value; .E: the series' parameter
    interval: tuple[str, int] | None = None
    slot: int = 0  # .E: how many intervals after the last explicit time the next value is
    created: float | None = None
    values: dict[float, dict[str, float | None]] = field(default_factory=dict)
    qualifiers: list[list[object]] = field(default_factory=list)
    reported: set[str] = field(default_factory=set)  # one Problem per reason per message


class _Parser:
    def __init__(self, result: ParseResult, now: datetime) -> None:
        self.result = result
        self.now = now
        self.msg: _Message | None = None
        self.rejected = False  # the open message's header was bad: skip its continuations
        self.in_b = False
        self.dropped = 0

    def problem(self, reason: str, line: int) -> None:
        if len(self.result.problems) < _MAX_PROBLEMS:
            self.result.problems.append(Problem(reason, line=line))
        else:
            self.dropped += 1

    def line(self, raw: str, lineno: int, start: int, end: int) -> None:
        if not raw.startswith("."):
            return  # junk or comment text between messages
        text = _strip_comments(raw).upper()
        m = _LINE.match(text)
        if text.startswith(".END"):
            self.in_b = False
            return
        if m is None:
            if text[1:2] in ("A", "B", "E"):
                self.problem(f"unknown SHEF line type {text.split()[0][:12]!r}: expected .A, .E, "
                             "a continuation such as .A1, or a revision .AR/.ER", lineno)
            return
        kind, revision, cont = m.group(1), m.group(2) == "R", m.group(3)
        body = text[m.end():]
        if kind == "B":
            if not cont:
                self.finish_message()
                self.in_b = True
                self.problem("SHEF .B not supported: the block up to .END is skipped", lineno)
            return
        if self.in_b and cont:
            return
        try:
            if cont:
                if self.msg is None or self.msg.kind != kind:
                    if not self.rejected:
                        self.problem(f"SHEF continuation .{kind}{cont} without an open .{kind} message",
                                     lineno)
                    return
                self.msg.end = end
                self.data(body, lineno, first_line=False)
            else:
                self.finish_message()
                self.in_b = False
                self.header(kind, revision, body, lineno, start, end)
        except _Bad as bad:
            self.problem(str(bad), lineno)

    def header(self, kind: str, revision: bool, body: str, lineno: int, start: int, end: int) -> None:
        self.rejected = True
        positional, slash, rest = body.partition("/")
        words = positional.split()
        if len(words) < 2:
            raise _Bad(f"SHEF .{kind} line needs a station and a date")
        station, date_text = words[0], words[1]
        if not _STATION.match(station):
            raise _Bad(f"bad SHEF station {station[:12]!r}: expected 3-8 letters or digits")
        code, more = "Z", words[2:]
        if more and more[0].isalpha() and len(more[0]) <= 2:
            # "HG 2.3" right after the date is data, not a zone.
            if more[0] in _LOCAL or more[0] in _FIXED or len(more) < 2 or not _NUMBER.match(more[1]):
                code, more = more[0], more[1:]
        tz: tzinfo | None = None
        if code in _LOCAL:
            tz = ZoneInfo(_LOCAL[code])
        elif code in _FIXED:
            tz = timezone(timedelta(minutes=_FIXED[code]))
        if tz is None:
            raise _Bad(f"unknown SHEF time zone code {code!r}")
        y, mo, d = self.positional_date(date_text)
        hour = 12 if code == "Z" else 24
        self.msg = _Message(kind, revision, station, tz, code, lineno, start, end, [y, mo, d, hour, 0, 0])
        self.rejected = False
        self.data(" ".join(more) + slash + rest, lineno, first_line=True)

    def data(self, text: str, lineno: int, first_line: bool) -> None:
        msg = self.msg
        assert msg is not None
        fields = text.split("/")
        # A slash that starts or ends a line only separates it from the next line.
        if not first_line and fields and not fields[0].strip():
            fields = fields[1:]
        if fields and not fields[-1].strip():
            fields = fields[:-1]
        for fld in fields:
            try:
                if msg.kind == "A":
                    for token in fld.split():
                        self.a_token(msg, token)
                else:
                    self.e_field(msg, fld.split())
            except _Bad as bad:
                if str(bad) not in msg.reported:
                    msg.reported.add(str(bad))
                    self.problem(f"{msg.station}: {bad}", lineno)

    def a_token(self, msg: _Message, token: str) -> None:
        if msg.pe is not None and not _is_element(token):
            pe, msg.pe = msg.pe, None
            self.store(msg, pe, token, _to_epoch(msg.date, msg.tz, msg.relative))
        elif msg.pe is not None:
            pe, msg.pe = msg.pe, None
            self.element(msg, token)
            raise _Bad(f"SHEF parameter {pe} has no value")
        elif _is_element(token):
            self.element(msg, token)
        elif _PE.match(token):
            msg.pe = token
        else:
            raise _Bad(f"bad SHEF parameter code {token[:12]!r}")

    def e_field(self, msg: _Message, tokens: list[str]) -> None:
        if not tokens:  # an empty field is a missing report: its time slot passes
            msg.slot += 1 if msg.pe is not None and msg.interval is not None else 0
            return
        values = []
        for token in tokens:
            if _is_element(token):
                self.element(msg, token)
            elif msg.pe is None and _PE.match(token):
                msg.pe = token
            else:
                values.append(token)
        if not values:
            return
        if len(values) > 1:
            msg.slot += 1
            raise _Bad(f"expected one value between slashes, got {' '.join(values)[:40]!r}")
        if msg.pe is None:
            raise _Bad(f"SHEF .E value {values[0][:12]!r} comes before the parameter code")
        if msg.interval is None and msg.slot > 0:
            raise _Bad("SHEF .E message has several values but no DI interval")
        unit, n = msg.interval or ("S", 0)
        step = [(unit, n * msg.slot)] if msg.slot else []
        msg.slot += 1
        self.store(msg, msg.pe, values[0], _to_epoch(msg.date, msg.tz, msg.relative + step))

    def element(self, msg: _Message, token: str) -> None:
        """Apply a date/data element: DH, DN, DD, DM, DY, DT, DJ, DS, DC, DR, DI, DU, DQ, DV."""
        m = _DATE_ELEMENT.match(token)
        if m and m.group(1) == "J":
            msg.date[:3] = self.julian(m.group(2), msg.date[0])
        elif m:
            msg.date = self.set_parts(msg.date, m.group(1), m.group(2), token)
        elif token.startswith("DC"):
            if msg.created is None:
                msg.created = self.creation(msg, token[2:])
            return
        elif r := _RELATIVE.match(token):
            pair = (r.group(2), int(r.group(3)))
            if r.group(1) == "I":
                if r.group(2) == "E" or pair[1] == 0:
                    raise _Bad(f"SHEF interval {token} is not supported")
                msg.interval = pair
                return
            msg.relative = [pair]
            msg.slot = 0
            return
        elif token[:2] in ("DU", "DQ", "DV") and len(token) > 2:
            return  # units, default qualifier, duration: not needed for times and values
        else:
            raise _Bad(f"bad SHEF date element {token[:16]!r}")
        msg.relative = []
        msg.slot = 0

    def set_parts(self, date: list[int], kind: str, digits: str, token: str) -> list[int]:
        parts = _PARTS[kind]
        if len(digits) % 2 or len(digits) > 2 * len(parts):
            raise _Bad(f"bad SHEF date element {token!r}: wrong number of digits")
        new = list(date)
        given = [int(digits[i : i + 2]) for i in range(0, len(digits), 2)]
        for part, value in zip(parts, given):
            if part == "C":
                new[0] = value * 100 + new[0] % 100
            elif part == "Y":
                new[0] = (new[0] // 100) * 100 + value if "C" in parts[: len(given)] else self.century(value)
            else:
                new["YMDHNS".index(part)] = value
        # DH12 means 12:00:00, DN30 means hh:30:00: the parts after the last one given are 0.
        last = parts[len(given) - 1]
        for part in "NS"[("HNS".index(last)) :] if last in "HN" else "":
            new["YMDHNS".index(part)] = 0
        return new

    def positional_date(self, text: str) -> tuple[int, int, int]:
        if not (text.isascii() and text.isdigit() and len(text) in (4, 6, 8)):
            raise _Bad(f"bad SHEF date {text[:12]!r}: expected mmdd, yymmdd or ccyymmdd")
        mo, d = int(text[-4:-2]), int(text[-2:])
        if len(text) == 4:
            return self.nearest_year(mo, d), mo, d
        year = int(text[:4]) if len(text) == 8 else self.century(int(text[:2]))
        _check_date(year, mo, d, text)
        return year, mo, d

    def nearest_year(self, mo: int, d: int) -> int:
        best: tuple[float, int] | None = None
        for year in (self.now.year - 1, self.now.year, self.now.year + 1):
            if 1 <= mo <= 12 and 1 <= d <= calendar.monthrange(year, mo)[1]:
                gap = abs((datetime(year, mo, d, tzinfo=timezone.utc) - self.now).total_seconds())
                best = min(best or (gap, year), (gap, year))
        if best is None:
            raise _Bad(f"bad SHEF date {mo:02d}{d:02d}: no such month and day")
        return best[1]

    def century(self, yy: int) -> int:
        year = self.now.year // 100 * 100 + yy
        return year - 100 if year > self.now.year + 10 else year

    def julian(self, digits: str, default_year: int) -> list[int]:
        if len(digits) not in (3, 5, 7):
            raise _Bad(f"bad SHEF DJ{digits[:9]}: expected ddd, yyddd or ccyyddd")
        year = (int(digits[:4]) if len(digits) == 7 else self.century(int(digits[:2])) if len(digits) == 5
                else default_year)
        day = int(digits[-3:])
        if not 1 <= year <= 9999 or not 1 <= day <= (366 if calendar.isleap(year) else 365):
            raise _Bad(f"bad SHEF DJ{digits}: no such day of the year")
        when = datetime(year, 1, 1) + timedelta(days=day - 1)
        return [when.year, when.month, when.day]

    def creation(self, msg: _Message, digits: str) -> float:
        if not (digits.isascii() and digits.isdigit()) or len(digits) not in (4, 6, 8, 10, 12):
            raise _Bad(f"bad SHEF creation date DC{digits[:12]}")
        if len(digits) >= 10:
            year = int(digits[:4]) if len(digits) == 12 else self.century(int(digits[:2]))
            digits = digits[-8:]
        else:
            year = msg.date[0]
        digits = digits.ljust(8, "0")
        parts = [year, int(digits[0:2]), int(digits[2:4]), int(digits[4:6]), int(digits[6:8]), 0]
        return _to_epoch(parts, msg.tz, [], f"DC{digits}")

    def store(self, msg: _Message, pe: str, token: str, when: float) -> None:
        value, qualifier = _value(token)
        msg.values.setdefault(when, {})[pe] = value
        if qualifier:
            msg.qualifiers.append([pe, when, qualifier])

    def finish_message(self) -> None:
        msg, self.msg = self.msg, None
        if msg is None:
            return
        if msg.pe is not None and msg.kind == "A":
            self.problem(f"{msg.station}: SHEF parameter {msg.pe} has no value", msg.line)
        if not msg.values:
            self.problem(f"SHEF .{msg.kind} message for {msg.station} holds no values", msg.line)
            return
        meta: dict[str, object] = {"format": msg.kind, "revision": msg.revision, "timezone": msg.tz_code}
        if msg.created is not None:
            meta["created"] = msg.created
        if msg.qualifiers:
            meta["qualifiers"] = msg.qualifiers
        entries = [Entry(t, msg.values[t]) for t in sorted(msg.values)]
        self.result.units.append(Unit(msg.station, entries, meta=meta, offset=msg.offset,
                                      length=msg.end - msg.offset))

    def finish(self) -> None:
        self.finish_message()
        if self.dropped:
            self.result.problems.append(Problem(f"{self.dropped} more problems not listed"))
        if not self.result.units and not self.result.problems:
            self.result.problems.append(Problem("no SHEF .A or .E messages found"))


def _strip_comments(line: str) -> str:
    """Drop ':' comments (to the next ':' or the line end) and '"' retained comments."""
    return _QUOTED.sub(" ", _COMMENT.sub(" ", line))


def _is_element(token: str) -> bool:
    return len(token) > 2 and token[0] == "D" and token[1] in "SNHDMYTJCRIUQV"


def _value(token: str) -> tuple[float | None, str | None]:
    if token in ("M", "MM"):
        return None, None
    if token == "T":
        return 0.001, None  # trace
    m = _NUMBER.match(token)
    if m is None:
        raise _Bad(f"bad SHEF value {token[:16]!r}")
    value = float(m.group(1))
    if math.isinf(value):
        raise _Bad(f"SHEF value {token[:16]}... is too large")
    return (None if value == -9999 else value), m.group(2)


def _check_date(year: int, month: int, day: int, text: str) -> None:
    if not (1 <= year <= 9999 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        raise _Bad(f"bad SHEF date {text[:12]!r}: no such day")


def _to_epoch(
    parts: list[int], tz: tzinfo, relative: list[tuple[str, int]], what: str = "observation time"
) -> float:
    """Local date parts + offsets -> epoch seconds.  Day, month and year offsets move the local
    calendar (same wall-clock time); second, minute and hour offsets are absolute time."""
    year, month, day, hour, minute, second = parts
    if hour == 24 and minute == 0 and second == 0:
        hour, extra_days = 0, 1  # 24:00 is the end of the day
    else:
        extra_days = 0
    try:
        _check_date(year, month, day, f"{year:04d}-{month:02d}-{day:02d}")
        if hour > 23 or minute > 59 or second > 59:
            raise _Bad(f"bad SHEF {what}: {parts[3]:02d}:{minute:02d}:{second:02d} is not a time of day")
        local = datetime(year, month, day, hour, minute, second) + timedelta(days=extra_days)
        seconds = 0
        for unit, n in relative:
            if unit in _SECONDS:
                seconds += n * _SECONDS[unit]
            elif unit == "D":
                local += timedelta(days=n)
            else:
                months = local.year * 12 + local.month - 1 + (n * 12 if unit == "Y" else n)
                y, m = divmod(months, 12)
                last = calendar.monthrange(y, m + 1)[1]
                local = local.replace(year=y, month=m + 1, day=last if unit == "E" else min(local.day, last))
        return (local.replace(tzinfo=tz) - _EPOCH).total_seconds() + seconds
    except (ValueError, OverflowError):
        raise _Bad(f"SHEF {what} is out of range") from None
