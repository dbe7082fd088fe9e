"""The alert tables in the SQLite store: alert states, transitions, silences, and the
notification outbox.

Notifications are rows written in the same transaction as the state changes that cause them
(the design's outbox rule): a crash between deciding and sending loses nothing, and a
restart does not announce twice.  Channel workers (notify.py) deliver the rows and record every
attempt; a row that exhausts its attempts stays as ``failed`` with its last error, visible in
`telmon alerts list`, `/api/v1/alerts/notifications`, `/metrics` and `telmon status`.
"""

from __future__ import annotations

import fnmatch
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from telmon.alerts.state import AlertState
from telmon.errors import BadRequest, ConfigError, NotFound
from telmon.store.migrate import migrate

COMPONENT = "alerts"
STEPS: tuple[str, ...] = (
    """
    CREATE TABLE alert_state (
        rule TEXT NOT NULL,
        subject TEXT NOT NULL,
        state TEXT NOT NULL,
        since REAL NOT NULL,
        severity TEXT NOT NULL,
        fired_at REAL,
        resolved_at REAL,
        value REAL,
        detail TEXT NOT NULL DEFAULT '{}',
        summary TEXT NOT NULL DEFAULT '',
        notified TEXT,
        notified_at REAL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (rule, subject)
    ) WITHOUT ROWID;
    CREATE INDEX alert_state_state ON alert_state(state, rule);
    CREATE TABLE alert_events (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        rule TEXT NOT NULL,
        subject TEXT NOT NULL,
        kind TEXT NOT NULL,
        severity TEXT NOT NULL,
        value REAL,
        summary TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX alert_events_at ON alert_events(at);
    CREATE TABLE alert_silences (
        id INTEGER PRIMARY KEY,
        rule TEXT NOT NULL,
        subject TEXT NOT NULL DEFAULT '*',
        starts_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        created_at REAL NOT NULL,
        created_by TEXT,
        comment TEXT NOT NULL DEFAULT '',
        expired_at REAL
    );
    CREATE TABLE alert_notifications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL DEFAULT 0,
        sent_at REAL,
        last_error TEXT,
        last_error_at REAL
    );
    CREATE INDEX alert_notifications_due ON alert_notifications(channel, status, id);
    CREATE INDEX alert_notifications_created ON alert_notifications(created_at);
    CREATE TABLE alert_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
)

_STATE_COLUMNS = ("rule, subject, state, since, severity, fired_at, resolved_at, value, detail, summary, notified, "
                  "notified_at")


def ensure_schema(store: Any) -> None:
    """Create or upgrade the alert tables (the SQLite store only, like the sinks' outbox)."""
    if not hasattr(store, "_writer"):
        raise ConfigError(f"alerts need the SQLite store; {getattr(store, 'url', store)} is not one", key="store")
    with store._lock:
        migrate(store._writer, COMPONENT, STEPS)


def _state(r: Sequence[Any]) -> AlertState:
    return AlertState(rule=r[0], subject=r[1], state=r[2], since=r[3], severity=r[4], fired_at=r[5],
                      resolved_at=r[6], value=r[7], detail=orjson.loads(r[8]) if r[8] else {}, summary=r[9],
                      notified=r[10], notified_at=r[11])


# --- states --------------------------------------------------------------------------------------------


def load_active(store: Any) -> dict[str, dict[str, AlertState]]:
    """rule -> subject -> its pending or firing alert."""
    out: dict[str, dict[str, AlertState]] = {}
    with store._read() as conn:
        for r in conn.execute(f"SELECT {_STATE_COLUMNS} FROM alert_state WHERE state IN ('pending', 'firing')"):
            st = _state(r)
            out.setdefault(st.rule, {})[st.subject] = st
    return out


def states(store: Any, *, rule: str | None = None, include_resolved_since: float | None = None) -> list[AlertState]:
    cond, params = "state IN ('pending', 'firing')", list[Any]()
    if include_resolved_since is not None:
        cond = f"({cond} OR resolved_at >= ?)"
        params.append(include_resolved_since)
    where = [cond]
    if rule is not None:
        where.append("rule = ?")
        params.append(rule)
    with store._read() as conn:
        rows = conn.execute(f"SELECT {_STATE_COLUMNS} FROM alert_state WHERE {' AND '.join(where)} "
                            "ORDER BY rule, subject", params).fetchall()
    return [_state(r) for r in rows]


def state_counts(store: Any) -> dict[tuple[str, str], int]:
    """(rule, state) -> alerts, pending and firing only (resolved rows are history)."""
    with store._read() as conn:
        return {(r, s): n for r, s, n in conn.execute(
            "SELECT rule, state, count(*) FROM alert_state WHERE state IN ('pending', 'firing') GROUP BY rule, state")}


@dataclass(slots=True)
class Outgoing:
    """A notification to queue: one channel, one rendered message."""

    channel: str
    kind: str  # alerts | digest | test
    title: str
    payload: dict[str, Any]
    status: str = "queued"  # "sending": claimed by the process that queues it (`alerts test --notify`)


def write_pass(store: Any, changed: Iterable[AlertState], removed: Iterable[tuple[str, str]],
               events: Iterable[tuple[str, AlertState]], outgoing: Iterable[Outgoing], *, now: float,
               meta: dict[str, str] | None = None) -> list[int]:
    """One transaction: state rows, transitions history, the notifications they cause (and
    ``meta`` keys, e.g. when the digest was queued).  Returns the ids of the notifications."""
    rows = [(s.rule, s.subject, s.state, s.since, s.severity, s.fired_at, s.resolved_at, s.value,
             orjson.dumps(s.detail).decode(), s.summary, s.notified, s.notified_at, now) for s in changed]
    gone = list(removed)
    history = [(now, a.rule, a.subject, kind, a.severity, a.value, a.summary) for kind, a in events]
    out = list(outgoing)
    if not (rows or gone or history or out or meta):
        return []
    ids = []
    with store.transaction() as conn:
        if rows:
            conn.executemany(
                f"INSERT OR REPLACE INTO alert_state({_STATE_COLUMNS}, updated_at) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        if gone:
            conn.executemany("DELETE FROM alert_state WHERE rule = ? AND subject = ?", gone)
        if history:
            conn.executemany("INSERT INTO alert_events(at, rule, subject, kind, severity, value, summary) "
                             "VALUES (?,?,?,?,?,?,?)", history)
        for o in out:
            cur = conn.execute(
                "INSERT INTO alert_notifications(channel, kind, title, payload, created_at, status) "
                "VALUES (?,?,?,?,?,?)", (o.channel, o.kind, o.title, orjson.dumps(o.payload).decode(), now, o.status))
            ids.append(int(cur.lastrowid or 0))
        for key, value in (meta or {}).items():
            set_meta(store, key, value, conn)
    return ids


def get_notification(store: Any, note_id: int) -> Notification | None:
    with store._read() as conn:
        r = conn.execute(f"SELECT {_NOTE_COLUMNS} FROM alert_notifications WHERE id = ?", (note_id,)).fetchone()
    return None if r is None else _note(r)


def forget_rules(store: Any, keep: Iterable[str]) -> int:
    """Drop pending and firing alerts of rules no longer configured; returns how many."""
    names = sorted(set(keep))
    with store.transaction() as conn:
        marks = ",".join("?" * len(names))
        where = f"AND rule NOT IN ({marks})" if names else ""
        return conn.execute(f"DELETE FROM alert_state WHERE state IN ('pending', 'firing') {where}", names).rowcount


def events_between(store: Any, start: float, end: float, *, limit: int = 10_000) -> list[dict[str, Any]]:
    with store._read() as conn:
        rows = conn.execute("SELECT at, rule, subject, kind, severity, value, summary FROM alert_events "
                            "WHERE at >= ? AND at <= ? ORDER BY at LIMIT ?", (start, end, limit)).fetchall()
    return [{"at": r[0], "rule": r[1], "subject": r[2], "kind": r[3], "severity": r[4], "value": r[5],
             "summary": r[6]} for r in rows]


def purge(store: Any, *, before: float) -> int:
    """Delete resolved alerts, history and delivered or failed notifications older than ``before``."""
    with store.transaction() as conn:
        n = conn.execute("DELETE FROM alert_state WHERE state = 'resolved' AND resolved_at < ?", (before,)).rowcount
        n += conn.execute("DELETE FROM alert_events WHERE at < ?", (before,)).rowcount
        n += conn.execute("DELETE FROM alert_notifications WHERE status != 'queued' AND created_at < ?",
                          (before,)).rowcount
        n += conn.execute("DELETE FROM alert_silences WHERE expires_at < ? OR expired_at < ?",
                          (before, before)).rowcount
    return n


# --- silences ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Silence:
    id: int
    rule: str  # glob over rule names
    subject: str  # glob over subjects
    starts_at: float
    expires_at: float
    created_at: float
    created_by: str | None
    comment: str
    expired_at: float | None = None

    def active(self, now: float) -> bool:
        return self.expired_at is None and self.starts_at <= now < self.expires_at

    def covers(self, rule: str, subject: str) -> bool:
        return fnmatch.fnmatchcase(rule, self.rule) and fnmatch.fnmatchcase(subject, self.subject)

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        from telmon.timeutil import iso

        body = {"id": self.id, "rule": self.rule, "subject": self.subject, "starts_at": iso(self.starts_at),
                "expires_at": iso(self.expires_at), "created_at": iso(self.created_at),
                "created_by": self.created_by, "comment": self.comment, "expired_at": iso(self.expired_at)}
        if now is not None:
            body["active"] = self.active(now)
        return body


_SILENCE_COLUMNS = "id, rule, subject, starts_at, expires_at, created_at, created_by, comment, expired_at"


def add_silence(store: Any, rule: str, subject: str, *, starts_at: float, expires_at: float, now: float,
                created_by: str | None = None, comment: str = "") -> Silence:
    if not rule or not subject:
        raise BadRequest("a silence needs a rule (name or glob) and a subject (name or glob, '*' for all)",
                         field="rule")
    if expires_at <= max(starts_at, now):
        raise BadRequest("a silence must expire in the future, after it starts", field="expires")
    with store.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO alert_silences(rule, subject, starts_at, expires_at, created_at, created_by, comment) "
            "VALUES (?,?,?,?,?,?,?)", (rule, subject, starts_at, expires_at, now, created_by, comment))
        sid = int(cur.lastrowid or 0)
    return Silence(sid, rule, subject, starts_at, expires_at, now, created_by, comment)


def expire_silence(store: Any, silence_id: int, *, now: float) -> Silence:
    """End a silence now (kept, marked expired).  Raises NotFound."""
    with store.transaction() as conn:
        r = conn.execute(f"SELECT {_SILENCE_COLUMNS} FROM alert_silences WHERE id = ?", (silence_id,)).fetchone()
        if r is None:
            raise NotFound("silence", silence_id)
        if r[8] is None and r[4] > now:
            conn.execute("UPDATE alert_silences SET expired_at = ? WHERE id = ?", (now, silence_id))
            r = (*r[:8], now)
    return Silence(*r)


def silences(store: Any, *, now: float, active_only: bool = True) -> list[Silence]:
    with store._read() as conn:
        if active_only:
            rows = conn.execute(f"SELECT {_SILENCE_COLUMNS} FROM alert_silences WHERE expired_at IS NULL "
                                "AND expires_at > ? AND starts_at <= ? ORDER BY id", (now, now)).fetchall()
        else:
            rows = conn.execute(f"SELECT {_SILENCE_COLUMNS} FROM alert_silences ORDER BY id").fetchall()
    return [Silence(*r) for r in rows]


# --- notifications ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Notification:
    id: int
    channel: str
    kind: str
    title: str
    payload: dict[str, Any]
    created_at: float
    status: str
    attempts: int
    next_at: float
    sent_at: float | None
    last_error: str | None
    last_error_at: float | None

    def to_json(self, *, with_payload: bool = False) -> dict[str, Any]:
        from telmon.timeutil import iso

        body = {"id": self.id, "channel": self.channel, "kind": self.kind, "title": self.title,
                "created_at": iso(self.created_at), "status": self.status, "attempts": self.attempts,
                "next_at": iso(self.next_at) if self.status == "queued" and self.next_at else None,
                "sent_at": iso(self.sent_at), "last_error": self.last_error, "last_error_at": iso(self.last_error_at)}
        if with_payload:
            body["payload"] = self.payload
        return body


_NOTE_COLUMNS = ("id, channel, kind, title, payload, created_at, status, attempts, next_at, sent_at, last_error, "
                 "last_error_at")


def _note(r: Sequence[Any]) -> Notification:
    return Notification(r[0], r[1], r[2], r[3], orjson.loads(r[4]), *r[5:])


def next_queued(store: Any, channel: str) -> Notification | None:
    """The oldest queued notification of ``channel`` (delivered in order, one at a time)."""
    with store._read() as conn:
        r = conn.execute(f"SELECT {_NOTE_COLUMNS} FROM alert_notifications WHERE channel = ? AND status = 'queued' "
                         "ORDER BY id LIMIT 1", (channel,)).fetchone()
    return None if r is None else _note(r)


def mark_sent(store: Any, note_id: int, *, now: float) -> None:
    with store.transaction() as conn:
        conn.execute("UPDATE alert_notifications SET status = 'sent', sent_at = ?, attempts = attempts + 1 "
                     "WHERE id = ?", (now, note_id))


def mark_attempt_failed(store: Any, note_id: int, error: str, *, now: float, next_at: float | None) -> None:
    """Record a failed attempt: retry at ``next_at``, or (None) give up: status failed."""
    with store.transaction() as conn:
        conn.execute(
            "UPDATE alert_notifications SET attempts = attempts + 1, last_error = ?, last_error_at = ?, "
            "status = ?, next_at = coalesce(?, next_at) WHERE id = ?",
            (error[:1000], now, "queued" if next_at is not None else "failed", next_at, note_id))


def notifications(store: Any, *, status: str | None = None, channel: str | None = None, limit: int = 100,
                  since: float | None = None) -> list[Notification]:
    where, params = [], []
    if status:
        where.append("status = ?")
        params.append(status)
    if channel:
        where.append("channel = ?")
        params.append(channel)
    if since is not None:
        where.append("created_at >= ?")
        params.append(since)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    with store._read() as conn:
        rows = conn.execute(f"SELECT {_NOTE_COLUMNS} FROM alert_notifications {clause} ORDER BY id DESC LIMIT ?",
                            [*params, limit]).fetchall()
    return [_note(r) for r in rows]


def channel_figures(store: Any, *, since: float) -> dict[str, dict[str, Any]]:
    """Per channel: queued, sent and failed since ``since``, last error and when."""
    out: dict[str, dict[str, Any]] = {}
    with store._read() as conn:
        for ch, st, n in conn.execute("SELECT channel, status, count(*) FROM alert_notifications "
                                      "WHERE status = 'queued' OR created_at >= ? GROUP BY channel, status", (since,)):
            out.setdefault(ch, {"queued": 0, "sent": 0, "failed": 0})[st] = n
        for ch, err, at in conn.execute(
                "SELECT channel, last_error, max(last_error_at) FROM alert_notifications "
                "WHERE last_error_at IS NOT NULL GROUP BY channel"):
            out.setdefault(ch, {"queued": 0, "sent": 0, "failed": 0}).update(last_error=err, last_error_at=at)
    return out


# --- meta ----------------------------------------------------------------------------------------------


def get_meta(store: Any, key: str) -> str | None:
    with store._read() as conn:
        r = conn.execute("SELECT value FROM alert_meta WHERE key = ?", (key,)).fetchone()
    return None if r is None else str(r[0])


def set_meta(store: Any, key: str, value: str, conn: sqlite3.Connection | None = None) -> None:
    if conn is not None:
        conn.execute("INSERT OR REPLACE INTO alert_meta(key, value) VALUES (?, ?)", (key, value))
        return
    with store.transaction() as c:
        c.execute("INSERT OR REPLACE INTO alert_meta(key, value) VALUES (?, ?)", (key, value))
