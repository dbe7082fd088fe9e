"""Tables of the ``push`` component (tokens, hosts, sensor events, cluster results) as
versioned migration steps (see store/migrate.py).  Append a step to change them."""

from __future__ import annotations

PUSH_STEPS: list[str] = [
    # 1
    """
    CREATE TABLE push_tokens (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        public_id TEXT NOT NULL UNIQUE,     -- the part of the token that finds its row
        secret_sha256 TEXT NOT NULL,        -- sha256 of the secret part; the secret itself is never stored
        hosts TEXT NOT NULL DEFAULT '[]',   -- JSON list of host globs it may write
        stations TEXT NOT NULL DEFAULT '[]',-- JSON list of station (sensor id) globs it may write
        created_at REAL NOT NULL,
        expires_at REAL,
        revoked_at REAL,
        note TEXT
    );
    CREATE TABLE push_hosts (
        name TEXT PRIMARY KEY,
        first_seen REAL NOT NULL
    );
    CREATE TABLE push_sensor_events (
        id INTEGER PRIMARY KEY,
        received_at REAL NOT NULL,
        device_id INTEGER NOT NULL,
        device_fw INTEGER NOT NULL,
        device_evt INTEGER NOT NULL,
        reported_at REAL NOT NULL,
        coil_reversed INTEGER NOT NULL,
        power_active_w REAL NOT NULL,
        power_reactive_var REAL NOT NULL,
        power_apparent_va REAL NOT NULL,
        line_current_a REAL NOT NULL,
        line_voltage_v REAL NOT NULL,
        line_phase_rad REAL NOT NULL,
        line_frequency_hz REAL NOT NULL,
        peaks TEXT NOT NULL,                -- JSON list of numbers
        fft_re TEXT NOT NULL,               -- JSON list
        fft_img TEXT NOT NULL,              -- JSON list
        wifi_strength_dbm REAL NOT NULL,
        dummy TEXT NOT NULL
    );
    CREATE TABLE push_cluster_runs (
        id INTEGER PRIMARY KEY,
        computed_at REAL NOT NULL,
        seconds REAL NOT NULL,
        events INTEGER NOT NULL,
        last_event_id INTEGER NOT NULL,
        bandwidth REAL,
        summary TEXT NOT NULL               -- JSON {"clusters": [...]}
    );
    """,
    # 2: an event remembers the (random 62-bit) id of the staged request that brought it, so
    # replaying the staging file after a crash cannot store it twice (see writer.py)
    """
    ALTER TABLE push_sensor_events ADD COLUMN stage_id INTEGER;
    CREATE UNIQUE INDEX push_sensor_events_stage ON push_sensor_events(stage_id);
    """,
]

# The staging file (beside the store): requests acknowledged but not yet in the rollups.
STAGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS push_stage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: the feed's progress is "every id up to N"
    payload BLOB NOT NULL
)
"""


def ensure_schema(store: object) -> None:
    """Bring the ``push`` tables up to date on an SQLiteStore (idempotent, cheap when current)."""
    from telmon.store.migrate import migrate

    # migrate() runs its own BEGIN IMMEDIATE on the writer connection, so it takes the
    # connection under the store's lock rather than inside transaction() (as SeriesStore does).
    with store._lock:  # type: ignore[attr-defined]
        migrate(store._writer, "push", PUSH_STEPS)  # type: ignore[attr-defined]
