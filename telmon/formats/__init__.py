"""Input formats, recognised by content, never by file name.

Each module exposes ``NAME``, ``sniff(head: bytes) -> bool`` (cheap, on the first few KiB) and
``parse(data: bytes, *, name: str = "", options: ParseOptions | None = None) -> ParseResult``.
A parser never raises on bad input: it returns the good units and a Problem for each bad part.
"""

from __future__ import annotations

from types import ModuleType
from typing import Protocol

from telmon.model import ParseOptions, ParseResult

SNIFF_BYTES = 4096


class Format(Protocol):
    NAME: str

    def sniff(self, head: bytes) -> bool: ...

    def parse(self, data: bytes, *, name: str = "", options: ParseOptions | None = None) -> ParseResult: ...


def all_formats() -> list[ModuleType]:
    """The formats in the order they are tried: most specific sniff first."""
    from telmon.formats import edl, jobarchive, lrgs, shef, toa5

    # jobarchive first: only gzip data matches its sniff
    return [jobarchive, edl, toa5, lrgs, shef]


def detect(head: bytes) -> ModuleType | None:
    for fmt in all_formats():
        if fmt.sniff(head):
            return fmt
    return None


def by_name(name: str) -> ModuleType | None:
    for fmt in all_formats():
        if fmt.NAME == name:
            return fmt
    return None
