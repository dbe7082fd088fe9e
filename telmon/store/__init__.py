"""Stores: SQLite (embedded default) behind the Store protocol in base.py."""

from __future__ import annotations

from pathlib import Path

from telmon.store.base import Store


def open_store(url: str | Path) -> Store:
    """Open a store from a URL or a path: ``sqlite:///path/to.db``, a plain path, or ``:memory:``."""
    from telmon.errors import ConfigError
    from telmon.store.sqlite import SQLiteStore

    s = str(url)
    if s.startswith(("postgresql://", "postgres://")):
        raise ConfigError("the PostgreSQL store is not available in this version of telmon", key="store")
    if s.startswith("sqlite:///"):
        s = s[len("sqlite:///"):]
    elif s.startswith("sqlite://"):
        s = s[len("sqlite://"):]
    return SQLiteStore(s)


__all__ = ["Store", "open_store"]
