"""Many machines, one central telmon: the push outbox, the pusher, and the receiving side.

On a machine running ``telmon tail --push URL``, each commit puts the file's samples in
``tail_outbox`` in the same transaction as its checkpoint (an outbox: nothing is sent before
it is safely recorded, nothing recorded is lost).  The :class:`Pusher` sends the outbox in
order and deletes what the central telmon confirms; while it is unreachable the rows wait
on disk.

The central telmon applies each machine's messages in order, exactly once: it keeps the last
sequence number applied per machine (and the sender's store epoch, so a machine whose store
started over is not ignored), in the same transaction as the samples.  A resent push whose
answer was lost is recognised and skipped.  Samples keep the machine in their series names,
so machines merge exactly: counts and sums add, sketches merge.  A rewind on the machine
sends a ``forget`` message; the central telmon reverts the batches it holds for it.
"""

from __future__ import annotations

import gzip
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import numpy as np
import orjson

from telmon.errors import BadRequest, TelmonError
from telmon.rollup.buckets import to_us
from telmon.tail import seriesio
from telmon.tail.names import parse_series
from telmon.tail.schema import ensure_schema

log = logging.getLogger("telmon.tail.push")

PUSH_PATH = "/api/v1/transfers/push"
MAX_PUSH_BYTES = 8 << 20  # a push carries messages up to about this much JSON


class PushRefused(TelmonError):
    """The central telmon answered but refused (bad token, bad body): retrying will not help."""

    status = 502


def epoch(conn: sqlite3.Connection) -> str:
    """This store's random epoch (made on first use)."""
    row = conn.execute("SELECT value FROM tail_meta WHERE key = 'epoch'").fetchone()
    if row:
        return str(row[0])
    value = secrets.token_hex(8)
    conn.execute("INSERT INTO tail_meta(key, value) VALUES ('epoch', ?)", (value,))
    return value


# --- the machine side -------------------------------------------------------------------------
def enqueue_samples(conn: sqlite3.Connection, machine: str, batch_id: int,
                    samples: Sequence[tuple[str, np.ndarray, np.ndarray]], *, now: float) -> None:
    body = {"kind": "samples", "batch": batch_id,
            "series": [[name, to_us(ts).tolist(), np.asarray(vals, np.float64).tolist()] for name, ts, vals in samples]}
    conn.execute("INSERT INTO tail_outbox(machine, created_at, body) VALUES (?,?,?)", (machine, now, orjson.dumps(body)))


def enqueue_forget(conn: sqlite3.Connection, machine: str, batches: Sequence[int], *, now: float) -> None:
    body = {"kind": "forget", "batches": [int(b) for b in batches]}
    conn.execute("INSERT INTO tail_outbox(machine, created_at, body) VALUES (?,?,?)", (machine, now, orjson.dumps(body)))


def outbox_depth(store: Any) -> tuple[int, int]:
    """(messages, bytes) waiting to be pushed."""
    with store._read() as conn:
        row = conn.execute("SELECT count(*), coalesce(sum(length(body)), 0) FROM tail_outbox").fetchone()
    return int(row[0]), int(row[1])


class Pusher:
    """Sends the outbox to ``url`` (a central telmon) until it is empty; retries with backoff."""

    def __init__(self, store: Any, url: str, token: str, *, interval: float = 5.0, timeout: float = 30.0,
                 backoff_max: float = 60.0, now: Callable[[], float] = time.time,
                 transport: httpx.BaseTransport | None = None) -> None:
        ensure_schema(store)
        self.store = store
        self.url = url.rstrip("/") + PUSH_PATH if not url.rstrip("/").endswith(PUSH_PATH) else url.rstrip("/")
        self.token = token
        self.interval = interval
        self.backoff_max = backoff_max
        self.now = now
        self._client = httpx.Client(timeout=timeout, transport=transport)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_ok_at: float | None = None

    def push_once(self) -> int:
        """Send one push of the oldest messages; return how many the central confirmed.
        Raises httpx errors (unreachable) or PushRefused."""
        with self.store._read() as conn:
            rows = conn.execute("SELECT seq, machine, created_at, body FROM tail_outbox ORDER BY seq LIMIT 500").fetchall()
        if not rows:
            return 0
        with self.store.transaction() as conn:
            ep = epoch(conn)
        by_machine: dict[str, list[tuple[int, float, bytes]]] = {}
        size = 0
        for seq, machine, created, body in rows:
            if size and size + len(body) > MAX_PUSH_BYTES:
                break
            by_machine.setdefault(machine, []).append((seq, created, body))
            size += len(body)
        machine = next(iter(by_machine))
        msgs = by_machine[machine]
        payload = b"".join([
            b'{"machine":', orjson.dumps(machine), b',"epoch":', orjson.dumps(ep), b',"messages":[',
            b",".join(b'{"seq":%d,"created_at":%s,"body":%s}' % (seq, orjson.dumps(created), body)
                      for seq, created, body in msgs),
            b"]}",
        ])
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        resp = self._client.post(self.url, content=gzip.compress(payload, 1), headers=headers)
        if resp.status_code >= 500:
            raise httpx.HTTPStatusError(f"central telmon answered {resp.status_code}", request=resp.request,
                                        response=resp)
        if resp.status_code != 200:
            try:
                reason = resp.json().get("error", resp.text)
            except ValueError:
                reason = resp.text
            raise PushRefused(f"central telmon refused the push ({resp.status_code}): {reason}")
        last = int(resp.json()["last_seq"])
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM tail_outbox WHERE machine = ? AND seq <= ?", (machine, last))
        done = sum(1 for seq, _, _ in msgs if seq <= last)
        self.sent += done
        self.last_ok_at = self.now()
        return done

    def drain(self) -> int:
        """Push until the outbox is empty (raises on the first failure)."""
        total = 0
        while True:
            n = self.push_once()
            if n == 0:
                return total
            total += n

    def run(self) -> None:
        delay = self.interval
        while not self._stop.is_set():
            try:
                self.drain()
                self.last_error = None
                delay = self.interval
            except (httpx.HTTPError, PushRefused, TelmonError, OSError) as exc:
                self.failures += 1
                self.last_error = str(exc)
                log.warning("push to %s failed (%s); the statistics wait in the outbox", self.url, exc)
                delay = min(max(delay * 2, 1.0), self.backoff_max)
            self._wake.wait(delay)
            self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="tail-push", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._client.close()

    def status(self) -> dict[str, Any]:
        messages, nbytes = outbox_depth(self.store)
        return {"url": self.url, "waiting": messages, "waiting_bytes": nbytes, "sent": self.sent,
                "failures": self.failures, "last_error": self.last_error, "last_ok_at": self.last_ok_at}


# --- the central side -------------------------------------------------------------------------
def decode_push(raw: bytes, encoding: str | None) -> dict[str, Any]:
    try:
        if encoding and "gzip" in encoding.lower():
            raw = gzip.decompress(raw)
        body = orjson.loads(raw)
    except (OSError, EOFError, orjson.JSONDecodeError) as exc:
        raise BadRequest(f"push body is not (gzipped) JSON: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("machine"), str) or not isinstance(body.get("messages"), list):
        raise BadRequest("push body must be {machine, epoch, messages: [...]}")
    return body


def apply_push(store: Any, series: Any, body: dict[str, Any], *, now: float) -> dict[str, Any]:
    """Apply a machine's messages in order, each exactly once, in one transaction."""
    ensure_schema(store)
    machine = body["machine"]
    ep = str(body.get("epoch", ""))
    messages = sorted(body["messages"], key=lambda m: int(m.get("seq", 0)))
    prepared = [_prepared(machine, m) for m in messages]
    applied = samples = 0
    with store.transaction() as conn:
        row = conn.execute("SELECT epoch, last_seq FROM tail_push_machines WHERE machine = ?", (machine,)).fetchone()
        last = row[1] if row and row[0] == ep else 0
        if row and row[0] != ep:
            log.warning("push: %s sends from a new store epoch %s (was %s); numbering starts over", machine, ep, row[0])
            # its batch numbers start over too: the old ones can no longer be named
            conn.execute("DELETE FROM tail_push_batches WHERE machine = ?", (machine,))
        for seq, kind, payload in prepared:
            if seq <= last:
                continue  # applied before: the answer to an earlier push was lost
            if kind == "samples":
                remote, series_list = payload
                batch_id = _central_batch(conn, store, machine, remote, now)
                result = seriesio.write_in(series, conn, series_list, batch_id=batch_id, source=f"push:{machine}",
                                           now=now)
                samples += result.accepted
            else:
                for remote in payload:
                    found = conn.execute("SELECT batch_id FROM tail_push_batches WHERE machine = ? AND remote_batch = ?",
                                         (machine, remote)).fetchone()
                    if found:
                        done = conn.execute("SELECT reverted_at FROM batches WHERE id = ?", (found[0],)).fetchone()
                        if done and done[0] is None:
                            seriesio.revert_in(series, conn, int(found[0]), now=now)
                        conn.execute("DELETE FROM tail_push_batches WHERE machine = ? AND remote_batch = ?",
                                     (machine, remote))
            last = seq
            applied += 1
        conn.execute(
            "INSERT INTO tail_push_machines(machine, epoch, last_seq, last_at, messages, samples) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT(machine) DO UPDATE SET epoch = excluded.epoch, last_seq = excluded.last_seq, "
            "last_at = excluded.last_at, messages = messages + excluded.messages, samples = samples + excluded.samples",
            (machine, ep, last, now, applied, samples),
        )
    return {"machine": machine, "applied": applied, "samples": samples, "last_seq": last}


def _prepared(machine: str, m: dict[str, Any]) -> tuple[int, str, Any]:
    """Check one message before anything is written (a bad message refuses the whole push)."""
    try:
        seq = int(m["seq"])
        body = m["body"]
        kind = body["kind"]
        if kind == "samples":
            out = []
            for name, ts, vals in body["series"]:
                key = parse_series(name)
                if key is None or key.machine != machine:
                    raise BadRequest(f"series {name!r} is not a transfer series of machine {machine!r}")
                out.append((name, np.asarray(ts, np.int64) / 1e6, np.asarray(vals, np.float64)))
            return seq, kind, (int(body["batch"]), out)
        if kind == "forget":
            return seq, kind, [int(b) for b in body["batches"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise BadRequest(f"malformed push message: {exc!r}") from None
    raise BadRequest(f"unknown push message kind {kind!r}")


def _central_batch(conn: sqlite3.Connection, store: Any, machine: str, remote: int, now: float) -> int:
    row = conn.execute("SELECT batch_id FROM tail_push_batches WHERE machine = ? AND remote_batch = ?",
                       (machine, remote)).fetchone()
    if row:
        ok = conn.execute("SELECT reverted_at IS NULL FROM batches WHERE id = ?", (row[0],)).fetchone()
        if ok and ok[0]:
            return int(row[0])
    batch_id = int(store.new_batch(conn, "series", f"push:{machine}:{remote}", now))
    conn.execute("INSERT OR REPLACE INTO tail_push_batches(machine, remote_batch, batch_id) VALUES (?,?,?)",
                 (machine, remote, batch_id))
    return batch_id
