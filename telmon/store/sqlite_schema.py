"""The core schema of the SQLite store, as versioned migration steps (see store/migrate.py).

Append a step to change the schema; never edit a released one.
"""

from __future__ import annotations

CORE_STEPS: list[str] = [
    # 1: stations, done-marks, arrivals, entries, gaps, rejections, batches
    """
    CREATE TABLE batches (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        source TEXT,
        started_at REAL NOT NULL,
        finished_at REAL,
        records INTEGER NOT NULL DEFAULT 0,
        reverted_at REAL
    );
    CREATE TABLE stations (
        id INTEGER PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL DEFAULT 'station',
        name TEXT,
        lat REAL,
        lon REAL,
        meta TEXT NOT NULL DEFAULT '{}',
        registered INTEGER NOT NULL DEFAULT 0,
        interval_s REAL,
        inferred_interval_s REAL,
        created_at REAL NOT NULL,
        first_arrival_at REAL,
        last_arrival_at REAL,
        arrival_count INTEGER NOT NULL DEFAULT 0,
        first_entry_at REAL,
        last_entry_at REAL,
        entry_count INTEGER NOT NULL DEFAULT 0,
        last_feed TEXT
    );
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        version INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        received_at REAL NOT NULL,
        recorded_at REAL NOT NULL,
        feed TEXT,
        format TEXT,
        status TEXT NOT NULL,
        reason TEXT,
        arrivals INTEGER NOT NULL DEFAULT 0,
        entries INTEGER NOT NULL DEFAULT 0,
        batch_id INTEGER NOT NULL REFERENCES batches(id),
        quarantined_to TEXT,
        UNIQUE (path, sha256)
    );
    CREATE INDEX files_path_size ON files(path, size, mtime_ns);
    CREATE TABLE arrivals (
        id INTEGER PRIMARY KEY,
        station_id INTEGER NOT NULL REFERENCES stations(id),
        received_at REAL NOT NULL,
        file_id INTEGER REFERENCES files(id),
        feed TEXT,
        format TEXT,
        message_time REAL,
        first_observed REAL,
        last_observed REAL,
        entry_count INTEGER NOT NULL DEFAULT 0,
        byte_offset INTEGER,
        byte_length INTEGER,
        meta TEXT,
        batch_id INTEGER NOT NULL REFERENCES batches(id)
    );
    CREATE INDEX arrivals_received ON arrivals(received_at);
    CREATE INDEX arrivals_station ON arrivals(station_id, received_at);
    CREATE INDEX arrivals_file ON arrivals(file_id);
    CREATE TABLE entries (
        id INTEGER PRIMARY KEY,
        station_id INTEGER NOT NULL,
        observed_at REAL NOT NULL,
        vals TEXT NOT NULL DEFAULT '{}',
        first_arrival_id INTEGER NOT NULL,
        first_seen_at REAL NOT NULL,
        last_arrival_id INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX entries_station_time ON entries(station_id, observed_at);
    CREATE TABLE gaps (
        station_id INTEGER NOT NULL,
        gap_start REAL NOT NULL,
        gap_end REAL NOT NULL,
        missing INTEGER NOT NULL,
        PRIMARY KEY (station_id, gap_start)
    ) WITHOUT ROWID;
    CREATE INDEX gaps_end ON gaps(gap_end);
    CREATE TABLE rejections (
        id INTEGER PRIMARY KEY,
        file_id INTEGER REFERENCES files(id),
        path TEXT,
        feed TEXT,
        origin TEXT NOT NULL DEFAULT 'file',
        received_at REAL NOT NULL,
        format TEXT,
        reason TEXT NOT NULL,
        line INTEGER,
        byte_offset INTEGER,
        batch_id INTEGER REFERENCES batches(id)
    );
    CREATE INDEX rejections_received ON rejections(received_at);
    """,
]
