"""Dataclasses for the nouns of telmon (see docs/design.md).

Times are floats of epoch seconds, UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Entry:
    """One observation time of a station, with the values observed then (parameter -> value).

    ``values`` may be empty: a GOES message without a decoding script still gives its
    message time as the station's time entry.
    """

    observed_at: float
    values: dict[str, float | None] = field(default_factory=dict)


@dataclass(slots=True)
class Unit:
    """One arrival found inside a file: a whole EDL file, one LRGS message, one SHEF line group.

    ``message_time`` is the time the unit itself carries (the LRGS header time), if any.
    ``meta`` holds format-specific fields (LRGS failure code, signal strength, ...), JSON-safe.
    ``offset``/``length`` locate the unit in the file, in bytes.
    ``overwrite``: a later value for an existing (station, time) replaces the stored one
    (EDL's ``//OVERWRITE``); when False the first stored value is kept.
    """

    station: str
    entries: list[Entry]
    message_time: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    offset: int = 0
    length: int = 0
    overwrite: bool = True

    @property
    def first_observed(self) -> float | None:
        times = [e.observed_at for e in self.entries]
        if self.message_time is not None:
            times.append(self.message_time)
        return min(times) if times else None

    @property
    def last_observed(self) -> float | None:
        times = [e.observed_at for e in self.entries]
        if self.message_time is not None:
            times.append(self.message_time)
        return max(times) if times else None


@dataclass(slots=True)
class Problem:
    """A part of a file a parser refused, and why; ``line`` is 1-based, ``offset`` in bytes."""

    reason: str
    line: int | None = None
    offset: int | None = None

    def where(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.offset is not None:
            parts.append(f"byte {self.offset}")
        return ", ".join(parts)


@dataclass(slots=True)
class ParseResult:
    """What a parser found: the good units, and the problems with the rest.

    A file with problems but some units is accepted in part (the problems are recorded as
    rejected pieces); a file with no units is rejected whole.
    """

    units: list[Unit] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass(slots=True)
class ParseOptions:
    """Settings a parser may need. ``tz`` maps a station id to an IANA zone or a fixed
    offset such as ``-05:00`` for formats whose times carry no zone (TOA5)."""

    default_tz: str = "UTC"
    tz: dict[str, str] = field(default_factory=dict)
    # Decoding scripts for GOES platforms, by DCP address (see formats/decodes.py).
    decoders: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class IngestResult:
    """What ingesting one file did."""

    path: str
    status: str  # "ok" | "partial" | "rejected" | "duplicate" | "skipped"
    format: str | None = None
    arrivals: int = 0
    entries: int = 0
    version: int = 0
    reasons: list[str] = field(default_factory=list)
    file_id: int | None = None
