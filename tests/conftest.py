"""Shared fixtures: real SQLite stores on tmp_path, one wait helper with one timeout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from telmon.store.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    st = SQLiteStore(tmp_path / "telmon.db")
    yield st
    st.close()
