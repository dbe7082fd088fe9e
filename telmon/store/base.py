"""The Store protocol: the handful of operations the pipeline and the questions need.

A store keeps stations, file done-marks, arrivals, time entries, gaps and rejections, and
keeps the per-station state the questions read (last arrival, last entry, gap table) current
as data arrives, so that no question scans history.
Reads return plain dicts with epoch-second floats; ``telmon.query`` formats them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from telmon.model import IngestResult, Problem, Unit


@dataclass(slots=True)
class FileRecord:
    """A file read and parsed, ready to be committed with its done-mark."""

    path: str
    feed: str
    size: int
    mtime_ns: int
    sha256: str
    received_at: float
    format: str | None
    units: list[Unit] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.units:
            return "rejected"
        return "partial" if self.problems else "ok"


@dataclass(slots=True)
class StationInfo:
    """Registry facts about a station (from config or an import), not its state."""

    code: str
    kind: str = "station"
    name: str | None = None
    lat: float | None = None
    lon: float | None = None
    interval_s: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Store(Protocol):
    url: str

    # --- writes -------------------------------------------------------------
    def record_files(self, records: Sequence[FileRecord], *, now: float) -> list[IngestResult]:
        """Commit records with their done-marks in one transaction; a (path, sha256) already
        recorded comes back as status "duplicate" and changes nothing."""
        ...

    def file_known(self, path: str, size: int, mtime_ns: int) -> bool:
        """True if the newest version of ``path`` was recorded with this size and mtime."""
        ...

    def upsert_stations(self, stations: Iterable[StationInfo], *, now: float) -> int: ...

    def set_quarantined(self, file_id: int, dest: str) -> None: ...

    # --- reads --------------------------------------------------------------
    def stations_updated(self, start: float, end: float) -> list[dict[str, Any]]: ...

    def station_gaps(
        self, start: float, end: float, stations: Sequence[str] | None = None, *, now: float | None = None
    ) -> list[dict[str, Any]]: ...

    def stations_silent(self, start: float, end: float) -> list[dict[str, Any]]: ...

    def arrivals(
        self, stations: Sequence[str], start: float | None, end: float | None, *, limit: int,
        after: tuple[float, int] | None = None,
    ) -> list[dict[str, Any]]: ...

    def entries(
        self, stations: Sequence[str], start: float | None, end: float | None, *, limit: int,
        after: tuple[str, float] | None = None,
    ) -> list[dict[str, Any]]: ...

    def recent_arrivals(self, limit: int = 20) -> list[dict[str, Any]]: ...

    def recent_files(self, limit: int = 20) -> list[dict[str, Any]]: ...

    def stations(self, *, search: str | None = None, limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]: ...

    def station(self, code: str) -> dict[str, Any] | None: ...

    def rejected(self, *, since: float | None = None, limit: int = 100) -> list[dict[str, Any]]: ...

    def counts(self) -> dict[str, int]: ...

    def close(self) -> None: ...
