"""Bearer tokens for submitters: stored hashed, scoped to hosts/stations, expiring, revocable.

A token reads ``tmk_<public id>_<secret>``.  The public id finds the row; the secret is kept
only as its SHA-256.  A plain fast hash is enough here (unlike passwords): the secret is 256
random bits, so there is nothing to guess, and a slow hash would cost every request.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from telmon.errors import BadRequest, NotFound
from telmon.push.errors import Forbidden, Unauthorized
from telmon.push.schema import ensure_schema
from telmon.timeutil import iso

PREFIX = "tmk_"


@dataclass(frozen=True, slots=True)
class Token:
    """A token's row, without its secret."""

    id: int
    name: str
    public_id: str
    hosts: tuple[str, ...]
    stations: tuple[str, ...]
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    note: str | None = None

    def state(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def scopes(self) -> str:
        parts = [f"host {h}" for h in self.hosts] + [f"station {s}" for s in self.stations]
        return ", ".join(parts) or "nothing"

    def may_write_host(self, host: str) -> bool:
        return any(fnmatch.fnmatchcase(host, g) for g in self.hosts)

    def may_write_station(self, station: str) -> bool:
        return any(fnmatch.fnmatchcase(station, g) for g in self.stations)

    def to_json(self, now: float) -> dict[str, Any]:
        return {"name": self.name, "id": self.public_id, "hosts": list(self.hosts), "stations": list(self.stations),
                "created_at": iso(self.created_at), "expires_at": iso(self.expires_at),
                "revoked_at": iso(self.revoked_at), "state": self.state(now), "note": self.note}


@dataclass(slots=True)
class _Cached:
    token: Token
    digest: str
    checked_at: float
    # scope decisions already taken for this token, so the hot path skips fnmatch
    hosts_ok: dict[str, bool] = field(default_factory=dict)
    stations_ok: dict[str, bool] = field(default_factory=dict)


_COLUMNS = "id, name, public_id, hosts, stations, created_at, expires_at, revoked_at, note"


def _row(r: Sequence[Any]) -> Token:
    return Token(r[0], r[1], r[2], tuple(orjson.loads(r[3])), tuple(orjson.loads(r[4])), r[5], r[6], r[7], r[8])


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """Tokens in the store's ``push_tokens`` table, with a short in-memory cache of verified ones.

    ``cache_seconds`` bounds how long a token revoked (or expired) elsewhere -- another process,
    the CLI -- can still be used here; a revocation through this object applies at once."""

    def __init__(self, store: Any, *, cache_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        ensure_schema(store)
        self.store = store
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    # --- management -------------------------------------------------------------------
    def add(self, name: str, *, hosts: Sequence[str] = (), stations: Sequence[str] = (),
            expires_at: float | None = None, note: str | None = None, now: float) -> tuple[Token, str]:
        """Create a token; returns its row and the token text (shown once: only its hash is kept).
        Raises BadRequest for an empty name, a name in use, or no scope at all."""
        name = name.strip()
        if not name:
            raise BadRequest("a token needs a name", field="name")
        hosts = [h.strip() for h in hosts if h.strip()]
        stations = [s.strip() for s in stations if s.strip()]
        if not hosts and not stations:
            raise BadRequest("give the hosts and/or stations the token may write (--host, --station; '*' for any)")
        if expires_at is not None and expires_at <= now:
            raise BadRequest("the expiry is in the past", field="expires")
        public_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        with self.store.transaction() as conn:
            if conn.execute("SELECT 1 FROM push_tokens WHERE name = ?", (name,)).fetchone():
                raise BadRequest(f"a token named {name!r} exists already (revoke it or pick another name)",
                                 field="name")
            cur = conn.execute(
                "INSERT INTO push_tokens(name, public_id, secret_sha256, hosts, stations, created_at, expires_at, note) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (name, public_id, _digest(secret), orjson.dumps(hosts).decode(), orjson.dumps(stations).decode(),
                 now, expires_at, note),
            )
            row = conn.execute(f"SELECT {_COLUMNS} FROM push_tokens WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _row(row), f"{PREFIX}{public_id}_{secret}"

    def list(self) -> list[Token]:
        with self.store._read() as conn:
            return [_row(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM push_tokens ORDER BY name")]

    def revoke(self, name: str, *, now: float) -> Token:
        """Revoke by name (or public id).  Raises NotFound."""
        with self.store.transaction() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM push_tokens WHERE name = ? OR public_id = ?",
                               (name, name)).fetchone()
            if row is None:
                raise NotFound("token", name)
            conn.execute("UPDATE push_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", (now, row[0]))
            row = conn.execute(f"SELECT {_COLUMNS} FROM push_tokens WHERE id = ?", (row[0],)).fetchone()
        with self._lock:
            self._cache.pop(row[2], None)
        return _row(row)

    def count_active(self, *, now: float) -> int:
        with self.store._read() as conn:
            return int(conn.execute(
                "SELECT count(*) FROM push_tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
                (now,)).fetchone()[0])

    # --- checks ---------------------------------------------------------------------
    def verify(self, text: str | None, *, now: float) -> Token:
        """The token the text names, if it may be used now.  Raises Unauthorized saying why."""
        if not text:
            raise Unauthorized("this server requires a bearer token: send 'Authorization: Bearer <token>' "
                               "(create one with `telmon token add`)")
        cached = self._lookup(text)
        token = cached.token
        if token.revoked_at is not None:
            raise Unauthorized(f"token {token.name!r} was revoked at {iso(token.revoked_at)}", token=token.name)
        if token.expires_at is not None and now >= token.expires_at:
            raise Unauthorized(f"token {token.name!r} expired at {iso(token.expires_at)}", token=token.name)
        return token

    def check_host(self, token: Token, host: str) -> None:
        """Raises Forbidden unless the token may write this host."""
        entry = self._cache.get(token.public_id)
        ok = entry.hosts_ok.get(host) if entry is not None else None
        if ok is None:
            ok = token.may_write_host(host)
            if entry is not None and len(entry.hosts_ok) < 10_000:
                entry.hosts_ok[host] = ok
        if not ok:
            raise Forbidden(f"token {token.name!r} may not write host {host!r} (it may write: {token.scopes()})",
                            token=token.name, target=host)

    def check_station(self, token: Token, station: str) -> None:
        entry = self._cache.get(token.public_id)
        ok = entry.stations_ok.get(station) if entry is not None else None
        if ok is None:
            ok = token.may_write_station(station)
            if entry is not None and len(entry.stations_ok) < 10_000:
                entry.stations_ok[station] = ok
        if not ok:
            raise Forbidden(f"token {token.name!r} may not write station {station!r} (it may write: {token.scopes()})",
                            token=token.name, target=station)

    def _lookup(self, text: str) -> _Cached:
        if not text.startswith(PREFIX) or text.count("_") < 2:
            raise Unauthorized(f"malformed token: expected {PREFIX}<id>_<secret> as `telmon token add` printed it")
        public_id, _, secret = text[len(PREFIX):].partition("_")
        digest = _digest(secret)
        clock = self._clock()
        entry = self._cache.get(public_id)
        if entry is None or clock - entry.checked_at > self.cache_seconds:
            with self.store._read() as conn:
                row = conn.execute(f"SELECT {_COLUMNS}, secret_sha256 FROM push_tokens WHERE public_id = ?",
                                   (public_id,)).fetchone()
            if row is None:
                raise Unauthorized("unknown token: it was never issued here (or was deleted)")
            entry = _Cached(_row(row[:9]), row[9], clock)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[public_id] = entry
        # constant-time compare: the response time must not tell how much of a guess was right
        if not hmac.compare_digest(entry.digest, digest):
            raise Unauthorized("unknown token: it was never issued here (or was deleted)")
        return entry
