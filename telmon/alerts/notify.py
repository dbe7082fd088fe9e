"""Notification channels: e-mail over SMTP and JSON webhooks, each delivered by its own thread.

The evaluator only *queues* notifications (rows in ``alert_notifications``, written with the
state changes).  One :class:`ChannelWorker` per channel delivers its rows in order, retrying a
failed attempt after a backoff that doubles up to a cap, and marks a row ``failed`` with its
last error after the configured attempts.  Because every channel has its own thread and queue,
a webhook that hangs or refuses never delays the e-mail or another webhook.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

import httpx

from telmon import __version__
from telmon.alerts import db
from telmon.alerts.rules import Rule
from telmon.alerts.settings import AlertSettings, webhooks
from telmon.alerts.state import Event
from telmon.timeutil import iso

log = logging.getLogger("telmon.alerts")

EMAIL = "email"
MAX_LISTED = 200  # alerts listed in one e-mail; the rest are counted (a whole network going silent)
_POLL = 5.0  # seconds between looks for rows queued by another process (`telmon alerts test --notify`)


@dataclass(frozen=True, slots=True)
class Channel:
    name: str  # "email" or "webhook:<name>"
    kind: str  # "email" | "webhook"
    url: str | None = None


def channels(settings: AlertSettings) -> list[Channel]:
    out = [Channel(EMAIL, "email")] if settings.email_enabled else []
    out += [Channel(f"webhook:{name}", "webhook", url) for name, url in webhooks(settings.alert_webhooks)]
    return out


def targets(rule: Rule, available: Sequence[Channel]) -> list[Channel]:
    """The channels a rule's notifications go to (its ``notify`` list; empty: all)."""
    if not rule.notify:
        return list(available)
    return [c for c in available if c.name in rule.notify or c.kind in rule.notify]


# --- rendering -----------------------------------------------------------------------------------------


def _alert_json(e: Event) -> dict[str, Any]:
    a = e.alert
    return {"rule": a.rule, "subject": a.subject, "state": a.state, "event": e.kind, "severity": a.severity,
            "kind": e.rule.kind, "labels": dict(e.rule.labels), "value": a.value, "threshold": e.rule.threshold_text(),
            "summary": a.summary, "since": iso(a.since), "fired_at": iso(a.fired_at), "resolved_at": iso(a.resolved_at),
            "detail": a.detail}


def _title(events: Sequence[Event]) -> str:
    firing = [e for e in events if e.kind in ("firing", "reminder")]
    resolved = [e for e in events if e.kind == "resolved"]
    parts = []
    for word, group in (("FIRING", firing), ("RESOLVED", resolved)):
        if not group:
            continue
        per_rule: dict[str, int] = {}
        for e in group:
            per_rule[e.alert.rule] = per_rule.get(e.alert.rule, 0) + 1
        rules = ", ".join(f"{r} ({n})" if n > 1 else r for r, n in per_rule.items())
        if len(group) == 1:
            rules = f"{group[0].alert.rule} {group[0].alert.subject}"
        parts.append(f"{word} {rules}")
    return "[telmon] " + "; ".join(parts)


def email_text(events: Sequence[Event], *, now: float, host: str) -> str:
    lines = [f"telmon {__version__} on {host}, {iso(now)}", ""]
    for word, kinds in (("Firing", ("firing",)), ("Still firing (reminder)", ("reminder",)), ("Resolved", ("resolved",))):
        group = [e for e in events if e.kind in kinds]
        if not group:
            continue
        lines.append(f"{word}: {len(group)}")
        for e in group[:MAX_LISTED]:
            a = e.alert
            when = f"since {iso(a.since)}" if e.kind != "resolved" else f"resolved {iso(a.resolved_at)}"
            labels = " ".join(f"{k}={v}" for k, v in e.rule.labels.items())
            lines.append(f"  [{a.severity}] {a.rule}: {a.summary}  ({when}{', ' + labels if labels else ''})")
        if len(group) > MAX_LISTED:
            lines.append(f"  ... and {len(group) - MAX_LISTED} more")
        lines.append("")
    lines += ["Silence one:  telmon alerts silence RULE --subject SUBJECT --for 2h --comment WHY",
              "List all:     telmon alerts list"]
    return "\n".join(lines) + "\n"


def outgoing(events: Sequence[Event], available: Sequence[Channel], settings: AlertSettings, *, now: float,
             kind: str = "alerts") -> list[db.Outgoing]:
    """The notifications for a pass's events: one per channel (and, for e-mail, per set of
    recipients), each listing all of that channel's events of the pass."""
    groups: dict[tuple[str, tuple[str, ...]], list[Event]] = {}
    by_name = {c.name: c for c in available}
    for e in events:
        for ch in targets(e.rule, available):
            to: tuple[str, ...] = ()
            if ch.kind == "email":
                to = tuple(e.rule.email_to or settings.alert_mail_to)
                if not to:
                    log.warning("rule %s: no e-mail recipient (alert_mail_to or the rule's email_to)", e.rule.name)
                    continue
            groups.setdefault((ch.name, to), []).append(e)
    host = socket.gethostname()
    out = []
    for (name, to), group in groups.items():
        title = _title(group)
        if kind == "test":
            title = "[telmon] TEST " + title.removeprefix("[telmon] ")
        if by_name[name].kind == "email":
            payload: dict[str, Any] = {"to": list(to), "subject": title, "text": email_text(group, now=now, host=host)}
        else:
            status = "firing" if any(e.kind != "resolved" for e in group) else "resolved"
            payload = {"body": {"source": "telmon", "version": 1, "kind": kind, "status": status, "host": host,
                                "sent_at": iso(now), "title": title, "alerts": [_alert_json(e) for e in group]}}
        out.append(db.Outgoing(name, kind, title, payload))
    return out


# --- senders -------------------------------------------------------------------------------------------


class DeliveryError(Exception):
    """An attempt failed; the message says why (HTTP status and body, SMTP reply)."""


class Sender(Protocol):
    def send(self, payload: dict[str, Any], *, note_id: int) -> None: ...

    def close(self) -> None: ...


class SmtpSender:
    """One SMTP conversation per message: STARTTLS or SSL, then login when a user is set."""

    def __init__(self, settings: AlertSettings) -> None:
        self.s = settings

    def message(self, payload: dict[str, Any], note_id: int) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.s.alert_mail_from
        msg["To"] = ", ".join(payload["to"])
        msg["Subject"] = payload["subject"]
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(idstring=f"telmon.{note_id}")
        msg["X-Telmon-Notification"] = str(note_id)
        msg.set_content(payload["text"])
        return msg

    def send(self, payload: dict[str, Any], *, note_id: int) -> None:
        s = self.s
        if not payload.get("to"):
            raise DeliveryError("no recipient")
        context = ssl.create_default_context(cafile=s.alert_smtp_ca_file or None)
        try:
            if s.alert_smtp_tls == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.alert_smtp_host, s.alert_smtp_port,
                                                      timeout=s.alert_smtp_timeout, context=context)
            else:
                smtp = smtplib.SMTP(s.alert_smtp_host, s.alert_smtp_port, timeout=s.alert_smtp_timeout)
            with smtp:
                smtp.ehlo()
                if s.alert_smtp_tls == "starttls":
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if s.alert_smtp_user:
                    smtp.login(s.alert_smtp_user, s.alert_smtp_password)
                refused = smtp.send_message(self.message(payload, note_id))
            if refused:
                raise DeliveryError(f"recipients refused: {', '.join(sorted(refused))}")
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {s.alert_smtp_host}:{s.alert_smtp_port}: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        pass


class WebhookSender:
    def __init__(self, url: str, *, token: str = "", timeout: float = 10.0) -> None:
        self.url = url
        headers = {"User-Agent": f"telmon/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.Client(timeout=timeout, headers=headers)

    def send(self, payload: dict[str, Any], *, note_id: int) -> None:
        try:
            r = self.client.post(self.url, json=payload["body"], headers={"X-Telmon-Notification": str(note_id)})
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= r.status_code < 300:
            raise DeliveryError(f"HTTP {r.status_code}: {r.text[:200]}")

    def close(self) -> None:
        self.client.close()


def sender_for(channel: Channel, settings: AlertSettings) -> Sender:
    if channel.kind == "email":
        return SmtpSender(settings)
    return WebhookSender(str(channel.url), token=settings.alert_webhook_token, timeout=settings.alert_webhook_timeout)


# --- delivery ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ChannelStats:
    sent: int = 0
    attempts_failed: int = 0
    failed: int = 0  # notifications given up on
    last_error: str | None = None
    last_error_at: float | None = None
    last_sent_at: float | None = None


@dataclass
class ChannelWorker:
    """Delivers one channel's queued notifications in order (see module doc)."""

    store: Any
    channel: Channel
    sender: Sender
    attempts: int = 6
    backoff: float = 5.0
    backoff_max: float = 600.0
    clock: Callable[[], float] = time.time
    stats: ChannelStats = field(default_factory=ChannelStats)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=f"telmon-notify-{self.channel.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.sender.close()

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.deliver_due()
            except Exception as exc:  # noqa: BLE001 - the store failed: note it, try again later
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("notification channel %s", self.channel.name)
                wait = _POLL
            self._wake.wait(wait)
            self._wake.clear()

    def deliver_due(self) -> float:
        """Deliver queued notifications until none is due; returns seconds until the next look."""
        while not self._stop.is_set():
            note = db.next_queued(self.store, self.channel.name)
            if note is None:
                return _POLL
            now = self.clock()
            if note.next_at > now:
                return min(_POLL, note.next_at - now)
            self.attempt(note)
        return 0.0

    def attempt(self, note: db.Notification) -> bool:
        try:
            self.sender.send(note.payload, note_id=note.id)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded on the row, never lost
            now = self.clock()
            error = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
            tries = note.attempts + 1
            give_up = tries >= self.attempts
            delay = min(self.backoff * 2 ** (tries - 1), self.backoff_max)
            db.mark_attempt_failed(self.store, note.id, error, now=now, next_at=None if give_up else now + delay)
            self.stats.attempts_failed += 1
            self.stats.last_error, self.stats.last_error_at = error, now
            if give_up:
                self.stats.failed += 1
                log.error("notification %d (%s) to %s failed %d times, giving up: %s", note.id, note.title,
                          self.channel.name, tries, error)
            else:
                log.warning("notification %d to %s failed (attempt %d of %d), retrying in %.1fs: %s", note.id,
                            self.channel.name, tries, self.attempts, delay, error)
            return False
        now = self.clock()
        db.mark_sent(self.store, note.id, now=now)
        self.stats.sent += 1
        self.stats.last_sent_at = now
        return True


class Dispatcher:
    """The channel workers of one telmon."""

    def __init__(self, store: Any, settings: AlertSettings, *, clock: Callable[[], float] = time.time,
                 senders: dict[str, Sender] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.channels = channels(settings)
        self.workers = {
            c.name: ChannelWorker(store, c, (senders or {}).get(c.name) or sender_for(c, settings),
                                  attempts=settings.alert_retry_attempts, backoff=settings.alert_retry_backoff,
                                  backoff_max=settings.alert_retry_max, clock=clock)
            for c in self.channels
        }

    def start(self) -> None:
        for w in self.workers.values():
            w.start()

    def stop(self) -> None:
        for w in self.workers.values():
            w._stop.set()
            w._wake.set()
        for w in self.workers.values():
            w.stop()

    def wake(self) -> None:
        for w in self.workers.values():
            w.wake()
