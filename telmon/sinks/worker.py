"""``telmon worker``: consume the work queue, run a command per message, ack only after it
succeeded. A failed (non-zero exit, killed, timed out, not startable) command's message goes back
on the queue after ``retry_delay`` and is delivered again, to this worker or another one.

At-least-once: a message is acked after its command exits 0, so a crash in between runs it
again; commands see ``TELMON_MESSAGE_ID`` (the archive's sha256) to recognise a repeat.
Up to ``prefetch`` commands run at once (the broker hands out no more unacked messages).
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pika
import pika.exceptions

from telmon.sinks.amqp import AmqpTarget, declare, parameters

log = logging.getLogger("telmon.sinks.worker")

_PLACEHOLDERS = ("path", "id", "sha256", "feed", "station")


@dataclass(slots=True)
class WorkerOptions:
    url: str
    queue: str
    command: Sequence[str]
    prefetch: int = 1
    retry_delay: float = 1.0  # pause before a failed message is handed back (no hot loop)
    max_failures: int = 0  # give up (reject, dead-letter if the queue has one) after this many; 0: never
    timeout: float | None = None  # seconds a command may run; then it is killed and counts as failed
    max_messages: int = 0  # stop after this many finished commands (0: run until stopped)
    declare: bool = True  # declare the durable queue if missing (as the relay would)


@dataclass
class WorkerStats:
    received: int = 0
    succeeded: int = 0
    failed: int = 0
    gave_up: int = 0
    reconnects: int = 0
    last_error: str | None = None


@dataclass
class _Running:
    tag: int
    msg_id: str | None
    proc: subprocess.Popen[bytes]
    deadline: float | None


@dataclass
class _Backlog:
    """Messages whose command finished, waiting for their ack/nack time."""

    due: list[tuple[float, int, str]] = field(default_factory=list)  # (when, tag, "ack"|"nack"|"reject")


def command_for(template: Sequence[str], msg: dict[str, Any]) -> list[str]:
    """``{path}``, ``{id}``, ``{sha256}``, ``{feed}``, ``{station}`` in the command's words
    become the message's fields (empty when absent)."""
    out = []
    for word in template:
        for name in _PLACEHOLDERS:
            token = "{" + name + "}"
            if token in word:
                word = word.replace(token, str(msg.get(name) or ""))
        out.append(word)
    return out


class JobWorker:
    """One consumer on one connection; ``run()`` blocks until ``stop()`` or ``max_messages``."""

    def __init__(self, options: WorkerOptions, *, clock: Callable[[], float] = time.monotonic) -> None:
        if options.prefetch < 1:
            raise ValueError("prefetch must be >= 1")
        if not options.command:
            raise ValueError("a command to run is required")
        self.options = options
        self.clock = clock
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._failures: dict[str, int] = {}

    def stop(self) -> None:
        """Take no new message; let running commands finish and settle their messages."""
        self._stop.set()

    def run(self) -> WorkerStats:
        delay = 0.5
        while not self._stop.is_set() and not self._done():
            try:
                self._session()
                delay = 0.5
            except pika.exceptions.AMQPError as exc:
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                self.stats.reconnects += 1
                log.warning("worker lost the broker (%s); reconnecting in %.1fs", self.stats.last_error, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
        return self.stats

    def _done(self) -> bool:
        n = self.options.max_messages
        return bool(n) and self.stats.succeeded + self.stats.failed >= n

    def _session(self) -> None:
        opts = self.options
        conn = pika.BlockingConnection(parameters(opts.url))
        running: dict[int, _Running] = {}
        backlog = _Backlog()
        try:
            ch = conn.channel()
            if opts.declare:
                declare(ch, AmqpTarget(url=opts.url, queue=opts.queue))
            ch.basic_qos(prefetch_count=opts.prefetch)
            log.info("worker consuming %s (prefetch %d): %s", opts.queue, opts.prefetch, " ".join(opts.command))
            for method, props, body in ch.consume(opts.queue, inactivity_timeout=0.05):
                if method is not None:
                    if self._stop.is_set() or self._done():
                        ch.basic_nack(method.delivery_tag, requeue=True)  # not ours to run any more
                    else:
                        self._start(method, props, body, running, backlog)
                self._reap(running, backlog)
                self._settle(ch, backlog, force=False)
                if (self._stop.is_set() or self._done()) and not running:
                    break
            # stopping: no new messages; the ones the broker had sent ahead go back at once
            ch.cancel()
            while running:
                self._reap(running, backlog)
                time.sleep(0.02)
            self._settle(ch, backlog, force=True)
            conn.close()
        except pika.exceptions.AMQPError:
            # Unacked messages go back to the queue with the connection; wait for the commands
            # we started so they do not outlive this worker, their results cannot be acked.
            for r in running.values():
                r.proc.wait()
            raise

    def _start(self, method: Any, props: Any, body: bytes, running: dict[int, _Running], backlog: _Backlog) -> None:
        self.stats.received += 1
        tag = method.delivery_tag
        try:
            msg = orjson.loads(body)
            if not isinstance(msg, dict):
                msg = {}
        except orjson.JSONDecodeError:
            msg = {}
        msg_id = props.message_id or msg.get("id")
        argv = command_for(self.options.command, {**msg, "id": msg_id})
        env = {**os.environ, "TELMON_MESSAGE_ID": str(msg_id or ""), "TELMON_PATH": str(msg.get("path") or ""),
               "TELMON_SHA256": str(msg.get("sha256") or ""), "TELMON_REDELIVERED": "1" if method.redelivered else "0"}
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=None, stderr=None, env=env)
        except OSError as exc:
            log.error("cannot run %s: %s", argv[0], exc)
            self._finished(tag, msg_id, False, backlog)
            return
        try:
            assert proc.stdin is not None
            proc.stdin.write(body)  # the message itself, JSON, on stdin
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the command does not read its stdin: fine
        deadline = self.clock() + self.options.timeout if self.options.timeout else None
        running[tag] = _Running(tag, msg_id, proc, deadline)

    def _reap(self, running: dict[int, _Running], backlog: _Backlog) -> None:
        now = self.clock()
        for tag, r in list(running.items()):
            code = r.proc.poll()
            if code is None and r.deadline is not None and now >= r.deadline:
                log.error("command for message %s timed out after %ss; killed", r.msg_id, self.options.timeout)
                r.proc.kill()
                code = r.proc.wait()
            if code is None:
                continue
            del running[tag]
            if code != 0:
                log.warning("command for message %s failed (exit %s)", r.msg_id, code)
            self._finished(tag, r.msg_id, code == 0, backlog)

    def _finished(self, tag: int, msg_id: str | None, ok: bool, backlog: _Backlog) -> None:
        if ok:
            self.stats.succeeded += 1
            if msg_id is not None:
                self._failures.pop(msg_id, None)
            backlog.due.append((0.0, tag, "ack"))
            return
        self.stats.failed += 1
        action = "nack"
        if msg_id is not None:
            n = self._failures[msg_id] = self._failures.get(msg_id, 0) + 1
            if self.options.max_failures and n >= self.options.max_failures:
                log.error("giving up on message %s after %d failures (rejected: dead-lettered if the queue "
                          "has a dead-letter exchange, else dropped)", msg_id, n)
                self.stats.gave_up += 1
                self._failures.pop(msg_id, None)
                action = "reject"
        backlog.due.append((self.clock() + (self.options.retry_delay if action == "nack" else 0.0), tag, action))

    def _settle(self, ch: Any, backlog: _Backlog, *, force: bool) -> None:
        now = self.clock()
        keep = []
        for due, tag, action in backlog.due:
            if not force and due > now:
                keep.append((due, tag, action))
            elif action == "ack":
                ch.basic_ack(tag)
            else:
                ch.basic_nack(tag, requeue=action == "nack")
        backlog.due = keep
