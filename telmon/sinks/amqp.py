"""The RabbitMQ relay: outbox rows -> persistent messages on a durable queue, with publisher
confirms, in outbox order.

One daemon thread runs a pika ``SelectConnection`` so that up to ``window`` messages are in
flight at once: waiting for each confirm in turn (BlockingConnection) managed ~700 messages/s
against a durable queue here, as every message waited for its own disk sync. A row is deleted
from the outbox only once the broker confirmed it; when the connection drops, every row still
there is published again, in order, after reconnecting (with a growing pause). So an outage
loses nothing and, in the normal path, nothing is sent twice; a confirm lost with the
connection can re-send a message, which consumers recognise by its ``message_id``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika.adapters.select_connection import SelectConnection
from pika.channel import Channel
from pika.frame import Method
from pika.spec import Basic, BasicProperties

from telmon.sinks.outbox import Outbox

log = logging.getLogger("telmon.sinks.amqp")

SINK = "amqp"
OUTBOX_ID_HEADER = "telmon-outbox-id"  # maps a returned (unroutable) message back to its row


@dataclass(frozen=True, slots=True)
class AmqpTarget:
    """Where messages go. An empty exchange is the default one (routing key = queue name)."""

    url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    queue: str = "t4tc_monitor"
    exchange: str = ""
    exchange_type: str = "direct"
    routing_key: str = ""

    @property
    def key(self) -> str:
        return self.routing_key or self.queue


def parameters(url: str, *, timeout: float = 10.0) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.connection_attempts = 1  # the relay does its own retries, with its own pauses
    params.socket_timeout = timeout
    params.blocked_connection_timeout = 300  # a broker in a memory alarm: reconnect, do not hang
    return params


def declare(channel: Any, target: AmqpTarget) -> None:
    """Declare the durable queue (and exchange and binding) with a BlockingChannel: what the
    relay does on connect, for workers and tests that start before any message was sent."""
    if target.exchange:
        channel.exchange_declare(target.exchange, exchange_type=target.exchange_type, durable=True)
    channel.queue_declare(target.queue, durable=True)
    if target.exchange:
        channel.queue_bind(target.queue, target.exchange, routing_key=target.key)


@dataclass
class AmqpStats:
    published: int = 0  # basic.publish calls (re-sends after a reconnect included)
    confirmed: int = 0
    nacked: int = 0
    returned: int = 0
    connects: int = 0
    failures: int = 0
    connected: bool = False
    in_flight: int = 0
    last_error: str | None = None


class AmqpRelay:
    """Drains the ``amqp`` outbox rows to RabbitMQ; see the module doc."""

    def __init__(self, outbox: Outbox, target: AmqpTarget, *, window: int = 256, poll: float = 0.25,
                 retry_max: float = 30.0, timeout: float = 10.0, drain_on_stop: float = 2.0,
                 now: Callable[[], float] = time.time) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.outbox = outbox
        self.target = target
        self.window = window
        self.poll = poll
        self.retry_max = retry_max
        self.timeout = timeout
        self.drain_on_stop = drain_on_stop
        self.now = now
        self.stats = AmqpStats()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: SelectConnection | None = None
        self._wake_pending = False
        self._reset_session()

    def _reset_session(self) -> None:
        """Per-connection state, touched only by the relay thread."""
        self._ch: Channel | None = None
        self._ready = False
        self._closing = False
        self._tag = 0
        self._in_flight: dict[int, int] = {}  # delivery tag -> outbox id
        self._last_sent = 0  # outbox id of the newest row published on this connection
        self._confirmed: list[int] = []  # outbox ids confirmed, not yet deleted
        self._returned: set[int] = set()
        self._ready_once = False
        self._self_closed = False  # we closed it (stop, nack, bounce): not a fault to report

    # --- public -------------------------------------------------------------------
    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="telmon-sink-amqp", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """New rows may have committed: publish them now rather than at the next poll."""
        conn = self._conn
        if conn is None or self._wake_pending:
            return
        self._wake_pending = True
        try:
            conn.ioloop.add_callback_threadsafe(self._on_wake)
        except Exception:  # noqa: BLE001 - the loop is closing; the next session reads the outbox anyway
            self._wake_pending = False

    def stop(self, timeout: float = 10.0) -> None:
        """Wait up to ``drain_on_stop`` s for messages in flight to be confirmed, then close.
        Unsent rows stay in the outbox for the next start."""
        self._stopping.set()
        conn = self._conn
        if conn is not None:
            try:
                conn.ioloop.add_callback_threadsafe(self._shutdown)
            except Exception:  # noqa: BLE001
                pass
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # --- thread -------------------------------------------------------------------
    def _run(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            was_ready = self._session()
            if self._stopping.is_set():
                break
            if was_ready:
                delay = 0.5
            self._stopping.wait(delay)
            delay = min(delay * 2, self.retry_max)

    def _session(self) -> bool:
        """One connection, from connect to close; returns whether it became ready."""
        self._reset_session()
        became_ready = False
        try:
            conn = SelectConnection(parameters(self.target.url, timeout=self.timeout),
                                    on_open_callback=self._on_open,
                                    on_open_error_callback=self._on_open_error,
                                    on_close_callback=self._on_closed)
        except Exception as exc:  # noqa: BLE001 - a bad URL: say so and retry later
            self._failed(f"cannot connect: {type(exc).__name__}: {exc}")
            return False
        self._conn = conn
        if self._stopping.is_set():  # stop() ran before _conn was visible to it
            conn.ioloop.add_callback_threadsafe(self._shutdown)
        try:
            conn.ioloop.start()
        except Exception as exc:  # noqa: BLE001 - an exception in a callback ends this session
            log.exception("amqp relay session failed")
            self._failed(f"{type(exc).__name__}: {exc}")
        finally:
            became_ready = self._ready_once
            self._conn = None
            self._wake_pending = False
            self.stats.connected = False
            self.stats.in_flight = 0
            self._flush_confirmed()
            try:
                conn.ioloop.close()
            except Exception:  # noqa: BLE001
                pass
        return became_ready

    def _failed(self, message: str) -> None:
        # Record what was confirmed before the failure first, so the status's "last delivered"
        # never looks newer than the error that stopped delivery.
        self._flush_confirmed()
        st = self.stats
        st.failures += 1
        if message != st.last_error:
            log.warning("amqp sink cannot deliver (will retry): %s", message)
        st.last_error = message
        try:
            self.outbox.failed(SINK, message, now=self.now())
        except Exception:  # noqa: BLE001 - the store may be the thing failing
            log.exception("cannot record the amqp sink error")

    # --- connection callbacks (relay thread) ------------------------------------------
    def _on_open(self, conn: SelectConnection) -> None:
        conn.channel(on_open_callback=self._on_channel_open)

    def _on_open_error(self, conn: SelectConnection, err: BaseException) -> None:
        self._failed(f"cannot connect to {self._where()}: {err!r}")
        conn.ioloop.stop()

    def _on_closed(self, conn: SelectConnection, reason: BaseException) -> None:
        if not self._stopping.is_set() and not self._self_closed:
            self._failed(f"connection to {self._where()} closed: {reason!r}")
        conn.ioloop.stop()

    def _on_channel_open(self, ch: Channel) -> None:
        self._ch = ch
        ch.add_on_close_callback(self._on_channel_closed)
        ch.add_on_return_callback(self._on_return)
        ch.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirm_mode)

    def _on_channel_closed(self, ch: Channel, reason: BaseException) -> None:
        self._ready = False
        if not self._stopping.is_set() and not self._self_closed:
            hint = ""
            if isinstance(reason, pika.exceptions.ChannelClosedByBroker) and reason.reply_code == 406:
                hint = (f" (queue {self.target.queue!r} or exchange {self.target.exchange!r} exists with other "
                        "settings; monitor.py declared t4tc_monitor non-durable: delete it or set amqp_queue)")
            self._failed(f"channel closed: {reason!r}{hint}")
        self._self_closed = True  # the cause is recorded above; closing the connection is ours
        conn = self._conn
        if conn is not None and conn.is_open:
            conn.close()
        elif conn is not None and conn.is_closed:
            conn.ioloop.stop()  # else it is closing, and _on_closed stops the loop

    def _on_confirm_mode(self, _frame: Method) -> None:
        assert self._ch is not None
        t = self.target
        if t.exchange:
            self._ch.exchange_declare(t.exchange, exchange_type=t.exchange_type, durable=True,
                                      callback=lambda _f: self._declare_queue())
        else:
            self._declare_queue()

    def _declare_queue(self) -> None:
        assert self._ch is not None
        self._ch.queue_declare(self.target.queue, durable=True, callback=self._on_queue_declared)

    def _on_queue_declared(self, _frame: Method) -> None:
        t = self.target
        if t.exchange and self._ch is not None:
            self._ch.queue_bind(t.queue, t.exchange, routing_key=t.key, callback=lambda _f: self._on_ready())
        else:
            self._on_ready()

    def _on_ready(self) -> None:
        self._ready = True
        self._ready_once = True
        self.stats.connects += 1
        self.stats.connected = True
        log.info("amqp sink connected to %s, queue %s", self._where(), self.target.queue)
        self._tick()

    # --- publishing (relay thread) -------------------------------------------------
    def _on_wake(self) -> None:
        self._wake_pending = False
        self._pump()

    def _tick(self) -> None:
        """Runs every ``poll`` s while connected: a safety net for missed wake-ups."""
        if self._conn is None or not self._ready:
            return
        self._flush_confirmed()
        self._pump()
        self._conn.ioloop.call_later(self.poll, self._tick)

    def _pump(self) -> None:
        if not self._ready or self._closing or self._ch is None:
            return
        while True:
            room = self.window - len(self._in_flight)
            if room <= 0:
                return
            rows = self.outbox.pending(SINK, after=self._last_sent, limit=room)
            if not rows:
                return
            for row in rows:
                props = BasicProperties(
                    content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent,
                    message_id=row.msg_id, timestamp=int(row.created_at), app_id="telmon",
                    type="telmon.arrival", headers={OUTBOX_ID_HEADER: row.id},
                )
                # mandatory: an unroutable message comes back (basic.return) instead of
                # being confirmed and silently dropped
                self._ch.basic_publish(self.target.exchange, self.target.key, row.payload.encode(),
                                       props, mandatory=True)
                self._tag += 1
                self._in_flight[self._tag] = row.id
                self._last_sent = row.id
                self.stats.published += 1
            self.stats.in_flight = len(self._in_flight)
            if len(rows) < room:
                return

    def _on_return(self, ch: Channel, method: Basic.Return, props: BasicProperties, body: bytes) -> None:
        oid = (props.headers or {}).get(OUTBOX_ID_HEADER)
        if isinstance(oid, int):
            self._returned.add(oid)
        self.stats.returned += 1
        self._failed(f"message {props.message_id} unroutable ({method.reply_text}): exchange "
                     f"{self.target.exchange!r}, routing key {self.target.key!r}")

    def _on_confirm(self, frame: Method) -> None:
        method = frame.method
        tag, multiple = method.delivery_tag, method.multiple
        tags = [t for t in self._in_flight if t <= tag] if multiple else [tag]
        if isinstance(method, Basic.Nack):
            self.stats.nacked += len(tags)
            # The broker could not take them: start over from the first unconfirmed row.
            self._failed(f"broker refused {len(tags)} message(s) (basic.nack)")
            self._restart()
            return
        bounced = False
        for t in tags:
            oid = self._in_flight.pop(t, None)
            if oid is None:
                continue
            if oid in self._returned:
                bounced = True  # confirmed, but dropped as unroutable: keep the row
                continue
            self._confirmed.append(oid)
        self.stats.confirmed += len(tags)
        self.stats.in_flight = len(self._in_flight)
        if bounced:
            self._restart()
            return
        # Delete at once (one small transaction per confirm frame, which covers many messages
        # with multiple=True): a crash re-sends at most the window, not a backlog of confirmed rows.
        self._flush_confirmed()
        if self._closing and not self._in_flight:
            self._close()
            return
        if len(self._in_flight) <= self.window // 2:
            self._pump()

    def _flush_confirmed(self) -> None:
        if not self._confirmed:
            return
        ids, self._confirmed = self._confirmed, []
        try:
            self.outbox.delivered(SINK, ids, now=self.now())
        except Exception as exc:  # noqa: BLE001 - they are in the queue; if the delete is lost they are re-sent
            log.exception("cannot delete %d confirmed outbox rows", len(ids))
            self.stats.last_error = f"outbox delete failed: {exc}"

    def _restart(self) -> None:
        """Close this connection; the next session re-publishes every row still in the outbox."""
        self._ready = False
        self._flush_confirmed()
        self._close()

    def _shutdown(self) -> None:
        self._closing = True
        if not self._in_flight or self._conn is None:
            self._close()
            return
        self._conn.ioloop.call_later(self.drain_on_stop, self._close)

    def _close(self) -> None:
        conn = self._conn
        self._ready = False
        self._self_closed = True
        self._flush_confirmed()
        if conn is None:
            return
        if conn.is_open:
            conn.close()
        elif not conn.is_closing:
            conn.ioloop.stop()

    def _where(self) -> str:
        p = parameters(self.target.url)
        return f"{p.host}:{p.port}{p.virtual_host if p.virtual_host != '/' else ''}"
