"""GOES DCS messages with the 37-byte LRGS/DOMSAT header (FORMATS.md "GOES DCS messages").

A file holds any number of messages of any platforms, either framed ``\\x01 <message> \\x02``
(OKVI4.data) or bare and back to back (the 5-digit length says where the next one starts).
Each message is one Unit: station = DCP address, message_time = header time.  Without a
decoding script the message time is the station's only time entry; with one
(``ParseOptions.decoders[address]``, see decodes.py) the entries are the decoded samples.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from telmon.model import Entry, ParseOptions, ParseResult, Problem, Unit

NAME = "lrgs"
HEADER_LENGTH = 37
_SOH, _STX = 0x01, 0x02
_BODY_IN_META = 256  # bodies up to this size are kept (escaped) in meta["body"]
_MAX_PROBLEMS = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_HEX = frozenset(b"0123456789ABCDEFabcdef")
# Status codes LRGS writes for a message that never arrived: no observation time to record.
_NO_DATA_CODES = frozenset("M")
_SKIPPABLE = frozenset(b"\x01\x02\r\n \t\x00")

# Where to resume after a bad spot: a frame start or something shaped like a header
# (address, time, 13 printable bytes, length).
_RESYNC = re.compile(rb"\x01|[0-9A-Fa-f]{8}\d{11}[\x20-\x7e]{13}\d{5}")
_SNIFF = re.compile(rb"^[\x01\s]*[0-9A-Fa-f]{8}\d{11}[\x20-\x7e]{13}\d{5}")


def sniff(head: bytes) -> bool:
    """True when the data starts (after an optional \\x01 frame byte) with a plausible header."""
    return _SNIFF.match(head[:256]) is not None


def parse(data: bytes, *, name: str = "", options: ParseOptions | None = None) -> ParseResult:
    """All messages in ``data``; a bad or truncated message is a Problem with its byte offset,
    then parsing resumes at the next frame or header."""
    result = ParseResult()
    if not data.strip(bytes(_SKIPPABLE)):
        reason = "empty file" if not data else "empty file: only framing bytes and blanks"
        result.problems.append(Problem(reason))
        return result
    decoders = options.decoders if options is not None else {}
    problems = _Problems(result.problems)
    n = len(data)
    pos = 0
    framed = False  # the message at pos followed a \x01
    while pos < n:
        b = data[pos]
        if b in _SKIPPABLE:
            if b == _SOH:
                framed = True
            elif b == _STX:
                framed = False
            pos += 1
            continue
        header = data[pos : pos + HEADER_LENGTH]
        if len(header) < HEADER_LENGTH:
            problems.add(f"truncated message: {len(header)} bytes left, a header needs {HEADER_LENGTH}", pos)
            break
        fields = _read_header(header)
        if isinstance(fields, str):
            problems.add(f"bad LRGS header: {fields}", pos)
            pos, framed = _resync(data, pos + 1)
            continue
        address, when, meta = fields
        length = meta["length"]
        start, end = pos + HEADER_LENGTH, pos + HEADER_LENGTH + length
        # A framed message must end at its \x02; a frame byte inside the body means the
        # message was cut short and the next one begins there.
        cut = _frame_cut(data, start, min(end, n)) if framed else -1
        if cut >= 0 or end > n:
            got = (cut if cut >= 0 else n) - start
            problems.add(
                f"truncated message from {address}: header says {length} bytes follow, "
                f"only {got} do",
                pos,
            )
            pos, framed = _resync(data, pos + 1)
            continue
        body = data[start:end]
        result.units.append(_unit(address, when, meta, body, pos, end - pos, decoders, problems))
        pos = end
        if framed and end < n and data[end] not in _SKIPPABLE:
            problems.add(f"message from {address} is not followed by its \\x02 frame end", end)
            pos, framed = _resync(data, end)
    problems.close()
    return result


def _resync(data: bytes, start: int) -> tuple[int, bool]:
    m = _RESYNC.search(data, start)
    if m is None:
        return len(data), False
    return m.start(), False


def _frame_cut(data: bytes, start: int, end: int) -> int:
    """Offset of the first \\x01 or \\x02 in data[start:end], or -1."""
    cut = [i for i in (data.find(b"\x01", start, end), data.find(b"\x02", start, end)) if i >= 0]
    return min(cut) if cut else -1


def _read_header(h: bytes) -> tuple[str, float, dict[str, Any]] | str:
    """(DCP address, message time, the other fields for meta), or why the header is unreadable."""
    address = h[0:8]
    if not all(c in _HEX for c in address):
        return f"DCP address {address!r} is not 8 hex digits"
    stamp = h[8:19]
    if not stamp.isdigit():  # bytes.isdigit: ASCII digits only
        return f"message time {stamp!r} is not YYDDDHHMMSS digits"
    yy, ddd, hh, mi, ss = int(stamp[0:2]), int(stamp[2:5]), int(stamp[5:7]), int(stamp[7:9]), int(stamp[9:11])
    year = 1900 + yy if yy >= 70 else 2000 + yy
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not (1 <= ddd <= (366 if leap else 365) and hh < 24 and mi < 60 and ss < 60):
        return f"message time {stamp.decode()} is not a valid YYDDDHHMMSS time"
    length = h[32:37]
    if not length.isdigit():
        return f"message length {length!r} is not 5 digits"
    when = datetime(year, 1, 1, hh, mi, ss, tzinfo=timezone.utc) + timedelta(days=ddd - 1)
    text = h.decode("latin-1")
    return address.decode().upper(), (when - _EPOCH).total_seconds(), {
        "failure_code": text[19],
        "signal_strength": int(h[20:22]) if h[20:22].isdigit() else None,
        "frequency_offset": _frequency_offset(text[22:24]),
        "modulation_index": text[24],
        "data_quality": text[25],
        "channel": int(h[26:29]) if h[26:29].isdigit() else None,
        "spacecraft": text[29],
        "source_code": text[30:32],
        "length": int(length),
    }


def _frequency_offset(text: str) -> int | None:
    """'+1' -> 1, '-A' -> -10: units of 50 Hz, 'A' meaning 10."""
    if len(text) != 2 or text[0] not in "+-" or text[1] not in "0123456789A":
        return None
    value = 10 if text[1] == "A" else int(text[1])
    return -value if text[0] == "-" else value


def _unit(
    address: str, when: float, meta: dict[str, Any], body: bytes, offset: int, length: int,
    decoders: dict[str, Any], problems: _Problems,
) -> Unit:
    if len(body) <= _BODY_IN_META:
        meta["body"] = repr(body)[2:-1]  # printable ASCII as is, other bytes as \xNN escapes
    entries = [] if meta["failure_code"] in _NO_DATA_CODES else [Entry(when)]
    decoder = decoders.get(address)
    if decoder is not None and entries:
        try:
            decoded, reasons = decoder.decode(body, when)
        except Exception as err:  # a decoder from elsewhere must not stop the file
            decoded, reasons = [], [f"decoder failed: {type(err).__name__}: {err}"]
        for reason in reasons:
            problems.add(f"message from {address}: {reason}", offset)
        if decoded:
            entries = decoded
        else:
            problems.add(f"message from {address}: decoding script found no sensor values", offset)
    return Unit(station=address, entries=entries, message_time=when, meta=meta, offset=offset, length=length)


class _Problems:
    """Collects problems, at most _MAX_PROBLEMS, then one line saying how many more."""

    def __init__(self, out: list[Problem]) -> None:
        self.out = out
        self.dropped = 0

    def add(self, reason: str, offset: int) -> None:
        if len(self.out) < _MAX_PROBLEMS:
            self.out.append(Problem(reason, offset=offset))
        else:
            self.dropped += 1

    def close(self) -> None:
        if self.dropped:
            self.out.append(Problem(f"{self.dropped} more problems not listed"))
