"""Versioned schema migrations, one list of steps per component.

Components (``core``, ``series``, ...) own their tables and migrate independently; the
``schema_versions`` table says where each stands.  A step is SQL text run in one
transaction with the version bump, so a crash mid-migration leaves the old version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from telmon.errors import SchemaTooNew


def migrate(conn: sqlite3.Connection, component: str, steps: Sequence[str]) -> int:
    """Bring ``component`` up to ``len(steps)``; return the version it was at before."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    row = conn.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
    current = row[0] if row else 0
    if current > len(steps):
        raise SchemaTooNew(component, current, len(steps))
    for version in range(current + 1, len(steps) + 1):
        # executescript commits implicitly, so run the step's statements one by one
        # inside an explicit transaction with the version bump.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split(steps[version - 1]):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_versions(component, version) VALUES (?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                (component, version),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return current


def _split(script: str) -> list[str]:
    """Split a migration script on semicolons that end a complete statement."""
    statements, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements
