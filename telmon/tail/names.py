"""Log file names -> streams, and the series names the statistics are kept under.

A stream is one (direction, client or source) on one machine: ``tx_amis.log`` and its
rotated files ``tx_amis.log.1``, ``tx_amis.log.2006-10-08.gz`` are the stream ``tx/amis``.
Series: ``transfers/<direction>/<client>/<machine>/<product type>/<metric>``; every part is
made safe (no ``/``, no glob characters), so a glob with ``*`` for some parts matches exactly
the series meant (the name always has six parts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "transfers"
DIRECTIONS = ("tx", "rx")
# metric -> how a span's value is read from its buckets
METRICS = ("latency", "bytes", "over_max", "errors", "duplicates")

_LOG = re.compile(r"^(tx|rx)_(.+?)\.log(\..*)?$")
_UNSAFE = re.compile(r"[\x00-\x20\x7f/*?\[\]\\]")


def safe(part: str, limit: int = 60) -> str:
    """A name part that cannot break a series name or a glob."""
    text = _UNSAFE.sub("_", part)[:limit]
    return text or "_"


@dataclass(frozen=True, slots=True)
class LogName:
    direction: str  # "tx" (sender to a client) or "rx" (receiver from a source)
    client: str
    current: bool  # the live name (tx_x.log), not a rotated one
    compressed: bool


def log_name(filename: str) -> LogName | None:
    """What a log file's name says, or None if it is not a tx_/rx_ log."""
    m = _LOG.match(filename)
    if not m:
        return None
    suffix = m.group(3) or ""
    return LogName(m.group(1), safe(m.group(2)), current=not suffix, compressed=filename.endswith(".gz"))


def series_name(direction: str, client: str, machine: str, product: str, metric: str) -> str:
    return f"{PREFIX}/{direction}/{client}/{machine}/{product}/{metric}"


@dataclass(frozen=True, slots=True)
class SeriesKey:
    direction: str
    client: str
    machine: str
    product: str
    metric: str


def parse_series(name: str) -> SeriesKey | None:
    parts = name.split("/")
    if len(parts) != 6 or parts[0] != PREFIX or parts[1] not in DIRECTIONS or parts[5] not in METRICS:
        return None
    return SeriesKey(*parts[1:])


def pattern(direction: str | None = None, client: str | None = None, machine: str | None = None,
            product: str | None = None, metric: str | None = None) -> str:
    """A glob naming exactly the series with the given parts (None: any)."""
    return "/".join([PREFIX, *(p if p else "*" for p in (direction, client, machine, product, metric))])
