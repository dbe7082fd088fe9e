"""Fixtures for the schedule tests: a real SQLite store with the slot recorder installed, an
ingestor over it, and the real OKVI4 sample (72 hourly GOES messages) with its platform XML."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from telmon.formats.decodes import load_platform_xml
from telmon.ingest.pipeline import Ingestor
from telmon.model import ParseOptions
from telmon.schedule.settings import ScheduleSettings
from telmon.schedule.store import SlotRecorder, ensure_schema
from telmon.store.sqlite import SQLiteStore
from tests.support import SAMPLES

OKVI4_DATA = SAMPLES / "goes" / "lrgs" / "OKVI4.data"
OKVI4_XML = SAMPLES / "goes" / "platforms" / "OKVI4-decodes.xml"
OKVI4_ADDRESS = "CE344292"
# The sample's last message is 2010 day 237 17:04:54Z (2010-08-25); the first 2010-08-22 18:04:54Z.
OKVI4_FIRST = 1282500294.0
OKVI4_LAST = 1282755894.0


@pytest.fixture
def sched_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    st = SQLiteStore(tmp_path / "telmon.db")
    ensure_schema(st)
    st.record_hooks.append(SlotRecorder(ScheduleSettings()))
    yield st
    st.close()


@pytest.fixture
def ingestor(sched_store: SQLiteStore) -> Ingestor:
    options = ParseOptions(decoders=load_platform_xml(OKVI4_XML))
    return Ingestor(sched_store, options=options, now=lambda: OKVI4_LAST + 3600)


def okvi4_messages() -> list[bytes]:
    """The sample's framed messages (\\x01 ... \\x02 \\n\\n), in file order (newest first)."""
    data = OKVI4_DATA.read_bytes()
    return [b"\x01" + part for part in data.split(b"\x01") if part.strip()]


def write(path: Path, data: bytes, mtime: float | None = None) -> Path:
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's chromium; skips without it (fails under CI=true)")
