"""The daily digest: queued once a day at the configured UTC time (clock passed in), mailed
through the real SMTP server, with the statsMonitor-like sections."""

from __future__ import annotations

from telmon.alerts import db
from telmon.alerts.digest import due
from telmon.alerts.evaluator import Evaluator
from telmon.alerts.notify import Dispatcher
from telmon.alerts.rules import parse_rules
from telmon.alerts.settings import AlertSettings
from telmon.store.sqlite import SQLiteStore
from tests.alerts.conftest import Clock, Mailbox, record, register

DAY = 86400.0
MIDNIGHT = 1_714_521_600.0  # 2024-05-01T00:00:00Z


def test_due_once_a_day_after_the_time() -> None:
    s = AlertSettings(alert_smtp_host="x", alert_mail_to=["a@b"], alert_digest_at="07:00")
    seven = MIDNIGHT + 7 * 3600
    assert not due(MIDNIGHT + 3600, seven - 1, s)
    assert due(MIDNIGHT + 3600, seven, s)
    assert not due(seven, seven + 3600, s)  # sent today already
    assert due(seven, seven + DAY + 60, s)
    assert due(seven - 2 * DAY, seven + 3600, s)  # down for days: one digest, not several


def test_digest_is_mailed_once_at_its_time(store: SQLiteStore, smtp: Mailbox) -> None:
    clock = Clock(MIDNIGHT + 6 * 3600)
    settings = AlertSettings.from_config({**smtp.settings(), "alert_digest_at": "07:00",
                                          "alert_digest_to": ["boss@example.org"]})
    register(store, ["A", "B"], clock.t - DAY)
    record(store, "A", clock.t - 600, feed="GOES")
    dispatcher = Dispatcher(store, settings)
    dispatcher.start()
    try:
        ev = Evaluator(store, parse_rules([{"name": "silent", "kind": "silence", "after": "2h"}]), settings,
                       dispatcher=dispatcher)
        ev.evaluate(clock.t)  # first run: notes the time, sends no digest for days it never watched
        ev.evaluate(clock.advance(59 * 60 + 59))
        assert [n.kind for n in db.notifications(store)] == ["alerts"]
        ev.evaluate(clock.advance(2))  # 07:00:01
        ev.evaluate(clock.advance(60))
        mails = smtp.wait(2)
        digests = [n for n in db.notifications(store) if n.kind == "digest"]
        assert len(digests) == 1
    finally:
        dispatcher.stop()
    digest = next(m for m in mails if "daily report" in m["Subject"])
    assert digest["To"] == "boss@example.org"
    assert digest["Subject"] == "[telmon] daily report: 1 alerts fired, 1 firing, 1 stations silent"
    text = digest.get_payload(decode=True).decode()
    for section in ("ALERTS: 1 fired in the period, 1 firing now", "STATIONS SILENT over the period: 1",
                    "COMPLETENESS PER SOURCE (feed), last 24 h", "TELMON HEALTH",
                    "notifications failed in the period: 0"):
        assert section in text, section
    assert "GOES" in text and "(never heard)" in text
