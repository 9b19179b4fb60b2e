"""Scheduled reports by mail: which are due (pure), and a running gateway mailing them once."""

from __future__ import annotations

import asyncio
import email
from datetime import datetime
from pathlib import Path

import pytest

from service.app import Gateway
from slamonitor.config import SlaSettings
from slamonitor.mailer import ReportMailer
from slamonitor.mailings import ReportSchedule, due_reports
from store.schema import events
from store.store import Store
from tests.quarantine.conftest import START, VirtualClock
from tests.service.gatewayfixtures import eventually, gateway_config
from tests.slamonitor.conftest import event
from tests.smtpsink import started_sink

CONTACTS = {"acme.test": "it@acme.test", "other.test": "admin@other.test"}


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def keys(
    now: float,
    schedule: ReportSchedule,
    tz: str = "UTC",
    sent: frozenset[tuple[str, str, str]] = frozenset(),
) -> list[tuple[str, str, str, str]]:
    return [(*d.key, d.recipient) for d in due_reports(now, tz, schedule, CONTACTS, sent)]


def test_the_last_complete_month_and_week_are_due() -> None:
    schedule = ReportSchedule(
        sla_monthly=True, operator="noc@mailmoat.test",
        antispam={"ACME.test": "weekly", "other.test": "monthly", "gone.test": "weekly"},
    )  # fmt: skip
    assert keys(at("2026-12-03T10:00:00+00:00"), schedule) == [
        ("sla_monthly", "acme.test", "2026-11", "it@acme.test"),
        ("sla_monthly", "other.test", "2026-11", "admin@other.test"),
        ("sla_monthly", "*", "2026-11", "noc@mailmoat.test"),
        ("antispam", "acme.test", "2026-W48", "it@acme.test"),
        ("antispam", "other.test", "2026-11", "admin@other.test"),
    ]  # gone.test has no contact: nobody to mail


def test_what_was_sent_is_not_due_again_and_nothing_is_mailed_unasked() -> None:
    schedule = ReportSchedule(sla_monthly=True)
    sent = frozenset({("sla_monthly", "acme.test", "2026-12")})
    assert keys(at("2027-01-01T05:00:00+00:00"), schedule, sent=sent) == [
        ("sla_monthly", "other.test", "2026-12", "admin@other.test")
    ]
    assert keys(at("2027-01-01T05:00:00+00:00"), ReportSchedule()) == []


@pytest.mark.parametrize(("tz", "month"), [("UTC", "2026-10"), ("Asia/Tokyo", "2026-11")])
def test_a_month_ends_in_the_reports_time_zone(tz: str, month: str) -> None:
    due = due_reports(at("2026-11-30T23:30:00+00:00"), tz, ReportSchedule(sla_monthly=True),
                      {"acme.test": "it@acme.test"}, frozenset())  # fmt: skip
    assert [d.label for d in due] == [month]


async def test_a_gateway_mails_due_reports_once(tmp_path: Path) -> None:
    sink = started_sink()
    downstream = f"127.0.0.1:{sink.port}"
    reports = {"sla_monthly": True, "operator": "noc@example.test",
               "antispam": {"example.test": "weekly"}}  # fmt: skip
    config = gateway_config(
        tmp_path, sink.port,
        domains={"example.test": {"downstream": downstream, "contact": "it@example.test"}},
        sla={"reports": reports},
    )  # fmt: skip
    store = Store(config.store.path)  # the mail of the past, before the mailer first looks
    store.write(lambda conn: conn.execute(events.insert(), [
        event("a", START - 30 * 86400, 3.0, domain="example.test"),  # October
        event("b", START - 7 * 86400, 1.0, domain="example.test", category="spam",
              outcome="quarantined"),  # week 46
        event("c", START - 7 * 86400, 1.0, domain="example.test", hits=[
            {"symbol": "CONTENT_RULE", "stage": "content", "rule": "no-exe",
             "recipients": ["bob@example.test", "carol@example.test"]},
        ]),  # week 46, a content rule that only logs
    ]))  # fmt: skip
    store.close()
    clock = VirtualClock()
    gateway = Gateway(config, clock=clock)
    await gateway.start()
    try:
        # Virtual time moves while we wait, as it would: a delivery deferred once (a busy
        # store, a refused session) is retried on the gateway's clock, not the test's.
        async with asyncio.timeout(30):
            while len(sink.received) < 3:
                clock.advance(1.0)
                await asyncio.sleep(0.2)
        arrived = list(sink.received)
        subjects = sorted(str(email.message_from_bytes(m.data)["Subject"]) for m in arrived)
        assert subjects == [
            "Mailmoat anti-spam report 2026-W46 for example.test",
            "Mailmoat service levels 2026-10 for all customers",
            "Mailmoat service levels 2026-10 for example.test",
        ]
        by_subject = {str(email.message_from_bytes(m.data)["Subject"]): m for m in arrived}
        spam = by_subject["Mailmoat anti-spam report 2026-W46 for example.test"]
        assert spam.rcpt_tos == ("it@example.test",)
        text = email.message_from_bytes(spam.data).get_payload(decode=True)
        assert isinstance(text, bytes) and b"category spam: 1" in text
        assert b"content rule no-exe: 1\r\n" in text
        assert b"content user carol@example.test: no-exe 1\r\n" in text
        sla = by_subject["Mailmoat service levels 2026-10 for example.test"].data
        sla_text = email.message_from_bytes(sla).get_payload(decode=True)
        assert isinstance(sla_text, bytes)
        assert b"latency: met (measured 1.0, target 0.95)" in sla_text
        again = ReportMailer(
            gateway.store.engine, config.sla, {"example.test": "it@example.test"},
            gateway._mail, clock=clock,
        )  # fmt: skip
        assert await again.send_due() == 0
        clock.advance(7 * 86400)  # a week on, the next anti-spam report
        assert await again.send_due() == 1
        await eventually(lambda: len(sink.received) == 4)
    finally:
        await gateway.stop()
        sink.stop()


def test_schedule_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"reports\.antispam\.`acme\.test`\n.*'weekly' or"):
        SlaSettings.model_validate({"reports": {"antispam": {"acme.test": "daily"}}})
