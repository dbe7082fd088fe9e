"""Delivery: e-mail to a real SMTP server (STARTTLS, AUTH, credentials from the environment),
webhooks to real HTTP servers on port 0 (one failing then recovering, one hanging, one never
recovering), with every attempt recorded on the notification."""

from __future__ import annotations

import time
from typing import Any

from telmon.alerts import db
from telmon.alerts.evaluator import Evaluator
from telmon.alerts.notify import Dispatcher
from telmon.alerts.rules import parse_rules
from telmon.alerts.settings import AlertSettings
from telmon.store.sqlite import SQLiteStore
from tests.alerts.conftest import Clock, Hook, Mailbox, register
from tests.support import wait_for

HOUR = 3600.0
RULES = parse_rules([{"name": "silent", "kind": "silence", "after": "2h", "severity": "critical",
                      "labels": {"team": "hydro"}}])


def running(store: SQLiteStore, settings: AlertSettings, rules: Any = RULES) -> tuple[Evaluator, Dispatcher]:
    dispatcher = Dispatcher(store, settings)
    dispatcher.start()
    return Evaluator(store, rules, settings, dispatcher=dispatcher), dispatcher


def test_email_over_starttls_with_login_from_the_environment(store: SQLiteStore, clock: Clock,
                                                             smtp: Mailbox) -> None:
    values = smtp.settings()
    password = values.pop("alert_smtp_password")
    settings = AlertSettings.from_config(values, env={"TELMON_ALERT_SMTP_PASSWORD": password})
    assert settings.alert_smtp_password == "s3cret"
    register(store, ["B000001", "B000002"], clock.t - 10 * HOUR)
    ev, dispatcher = running(store, settings)
    try:
        ev.evaluate(clock.t)
        [msg] = smtp.wait(1)
    finally:
        dispatcher.stop()
    assert smtp.tls == [True] and smtp.logins == [(b"telmon", b"s3cret")]
    assert smtp.envelopes[0].rcpt_tos == ["ops@example.org"]
    assert msg["From"] == "telmon@example.org" and msg["To"] == "ops@example.org"
    assert msg["Subject"] == "[telmon] FIRING silent (2)"
    text = msg.get_payload(decode=True).decode()
    assert "Firing: 2" in text
    assert "[critical] silent: B000001: no arrival for 10h  (since 2024-05-01T12:00:00Z, team=hydro)" in text
    assert "telmon alerts silence" in text
    [note] = db.notifications(store)
    assert note.status == "sent" and note.attempts == 1 and msg["X-Telmon-Notification"] == str(note.id)


def test_wrong_smtp_password_is_recorded_and_given_up(store: SQLiteStore, clock: Clock, smtp: Mailbox) -> None:
    settings = AlertSettings.from_config({**smtp.settings(), "alert_smtp_password": "wrong",
                                          "alert_retry_attempts": 2, "alert_retry_backoff": 0.05})
    register(store, ["A"], clock.t - 10 * HOUR)
    ev, dispatcher = running(store, settings)
    try:
        ev.evaluate(clock.t)
        wait_for(lambda: db.notifications(store, status="failed"), what="the notification to fail")
    finally:
        dispatcher.stop()
    [note] = db.notifications(store)
    assert note.attempts == 2 and "535" in (note.last_error or "") and smtp.messages == []
    figures = db.channel_figures(store, since=0)["email"]
    assert figures["failed"] == 1 and "535" in figures["last_error"]


def test_webhook_that_fails_then_recovers(store: SQLiteStore, clock: Clock, hooks: Any) -> None:
    flaky: Hook = hooks(fail=2)
    settings = AlertSettings(alert_webhooks=[f"flaky={flaky.url}"], alert_webhook_token="tok",
                             alert_retry_backoff=0.05, alert_retry_attempts=5)
    register(store, ["A"], clock.t - 10 * HOUR)
    ev, dispatcher = running(store, settings)
    try:
        ev.evaluate(clock.t)
        wait_for(lambda: flaky.received, what="the webhook to get through")
        wait_for(lambda: db.notifications(store, status="sent"), what="the notification to be marked sent")
    finally:
        dispatcher.stop()
    assert flaky.attempts == 3
    [body] = flaky.received
    assert body["status"] == "firing" and body["source"] == "telmon"
    [alert] = body["alerts"]
    assert (alert["rule"], alert["subject"], alert["severity"], alert["labels"]) == ("silent", "A", "critical",
                                                                                      {"team": "hydro"})
    assert alert["value"] == 36000 and alert["event"] == "firing"
    assert flaky.headers[0]["Authorization"] == "Bearer tok"
    [note] = db.notifications(store)
    # the failures stay on the row: two failed attempts, then delivered
    assert note.attempts == 3 and note.last_error == "HTTP 500: temporarily broken"
    assert dispatcher.workers["webhook:flaky"].stats.attempts_failed == 2


def test_a_hanging_endpoint_does_not_block_the_others(store: SQLiteStore, clock: Clock, hooks: Any,
                                                      smtp: Mailbox) -> None:
    stuck: Hook = hooks(hang=True)
    good: Hook = hooks()
    settings = AlertSettings.from_config({**smtp.settings(), "alert_webhooks": [f"stuck={stuck.url}",
                                                                                 f"good={good.url}"],
                                          "alert_webhook_timeout": 30.0})
    register(store, ["A"], clock.t - 10 * HOUR)
    ev, dispatcher = running(store, settings)
    try:
        t = time.monotonic()
        ev.evaluate(clock.t)
        wait_for(lambda: good.received and smtp.messages, what="the good webhook and the e-mail")
        assert time.monotonic() - t < 10  # not behind the stuck endpoint's 30 s timeout
        assert stuck.attempts == 1 and not stuck.received
    finally:
        stuck.close()  # release the held request so its worker can stop
        dispatcher.stop()


def test_an_endpoint_that_never_recovers_ends_failed_and_visible(store: SQLiteStore, clock: Clock,
                                                                 hooks: Any) -> None:
    down: Hook = hooks(fail=100)
    settings = AlertSettings(alert_webhooks=[down.url], alert_retry_backoff=0.02, alert_retry_attempts=3)
    register(store, ["A"], clock.t - 10 * HOUR)
    ev, dispatcher = running(store, settings)
    try:
        ev.evaluate(clock.t)
        wait_for(lambda: db.notifications(store, status="failed"), what="the notification to be given up")
    finally:
        dispatcher.stop()
    [note] = db.notifications(store, status="failed")
    assert note.channel == "webhook:webhook1" and note.attempts == 3 and down.attempts == 3
    assert note.last_error == "HTTP 500: temporarily broken"


def test_queued_notifications_survive_a_restart(store: SQLiteStore, clock: Clock, hooks: Any) -> None:
    hook: Hook = hooks()
    settings = AlertSettings(alert_webhooks=[hook.url])
    register(store, ["A"], clock.t - 10 * HOUR)
    # decided by a process that stopped before delivering
    Evaluator(store, RULES, settings).evaluate(clock.t)
    assert [n.status for n in db.notifications(store)] == ["queued"]
    dispatcher = Dispatcher(store, settings)
    dispatcher.start()
    try:
        wait_for(lambda: hook.received, what="the queued notification to go out")
    finally:
        dispatcher.stop()
    assert [n.status for n in db.notifications(store)] == ["sent"]
