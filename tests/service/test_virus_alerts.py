"""Virus alerts through the real gateway: EICAR in over loopback SMTP, alerts out to the sink."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

import pytest

from filters.verdict import Action, Category, Hit, Stage, Verdict, VirusFinding
from service.app import Gateway
from service.virus_alerts import AlertSettings, AlertTo, Skipped, is_automatic, plan
from store.principal import Principal
from store.records import Direction, Outcome, Spooled
from tests.service.conftest import Start
from tests.service.gatewayfixtures import eventually, message, rows, send
from tests.service.test_gateway import EICAR
from tests.smtpsink import Received, RecordingSink

SUBJECT = "Virus alert: a message was stopped"


def infected(sender: str = "alice@sender.test", **headers: str) -> EmailMessage:
    msg = message(sender=sender, subject="Invoice attached")
    for name, value in headers.items():
        msg[name] = value
    msg.add_attachment(EICAR, maintype="application", subtype="octet-stream", filename="eicar.com")
    return msg


def alerting(sink: RecordingSink, to: str = "both", **more: str) -> dict[str, Any]:
    downstream = f"127.0.0.1:{sink.port}"
    settings = {"downstream": downstream, "virus_alerts": to, **more}
    return {"example.test": settings, "sender.test": {"downstream": downstream}}


def alerts(sink: RecordingSink) -> dict[str, Received]:
    """Alerts the sink got, by recipient (each alert has one)."""
    found = {}
    for got in sink.received:
        if email.message_from_bytes(got.data)["Subject"] == SUBJECT:
            (rcpt,) = got.rcpt_tos
            found[rcpt] = got
    return found


def sample(gateway: Gateway, name: str, **labels: str) -> float | None:
    return gateway.registry.get_sample_value(name, labels)


def skipped_once(gateway: Gateway, reason: str) -> bool:
    """One alert skipped for ``reason``: counted after the outcome is stored, so poll."""
    return sample(gateway, "mailmoat_virus_alerts_skipped_total", reason=reason) == 1.0


async def test_sender_recipient_and_admin_are_told_without_the_virus(
    start_gateway: Start, sink: RecordingSink
) -> None:
    gateway = await start_gateway(domains=alerting(sink, virus_admin="admin@example.test"))
    _, reply = await send(gateway.smtp_port, infected())
    queue_id = reply.rsplit(" ", 1)[1]
    await eventually(lambda: len(alerts(sink)) == 3)
    told = alerts(sink)
    assert sorted(told) == ["admin@example.test", "alice@sender.test", "bob@example.test"]
    for got in told.values():
        assert got.mail_from == "<>"  # a null sender: a bounce of the alert cannot loop
        assert b"EICAR" not in got.data and b"eicar.com" not in got.data
        notice = email.message_from_bytes(got.data, policy=email.policy.default)
        assert notice["Auto-Submitted"] == "auto-generated" and not notice.is_multipart()
        text = notice.get_content()
        assert queue_id in text and "alice@sender.test" in text and "bob@example.test" in text
        assert "EICAR" not in text  # names the signature, not the test string itself
    db = gateway.config.store.path
    assert rows(db, "SELECT outcome, category FROM events") == [("quarantined", "virus")]
    kinds = rows(db, "SELECT kind, count(*) FROM deliveries GROUP BY kind ORDER BY kind")
    assert ("virus_alert", 3) in kinds and ("deliver", 1) not in kinds
    for party in ("sender", "recipient", "admin"):
        assert sample(gateway, "mailmoat_virus_alerts_total", party=party) == 1.0


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("sender", ["alice@sender.test"]),
        ("recipient", ["bob@example.test"]),
        ("none", []),
    ],
)
async def test_the_customer_chooses_who_is_told(
    start_gateway: Start, sink: RecordingSink, to: str, expected: list[str]
) -> None:
    gateway = await start_gateway(domains=alerting(sink, to))
    await send(gateway.smtp_port, message(subject="clean, sent after the virus"))
    await send(gateway.smtp_port, infected())
    db = gateway.config.store.path
    await eventually(lambda: rows(db, "SELECT count(*) FROM events") == [(2,)])
    # The clean message is delivered after the virus's alerts were queued with its outcome.
    await eventually(lambda: len(rows(db, "SELECT 1 FROM deliveries WHERE state='pending'")) == 0)
    assert sorted(alerts(sink)) == expected


async def test_no_alert_to_a_null_sender_and_none_back_to_an_address_that_bounced(
    start_gateway: Start, sink: RecordingSink
) -> None:
    gateway = await start_gateway(domains=alerting(sink, "sender"))
    db = gateway.config.store.path
    await send(gateway.smtp_port, infected(sender=""), sender="")
    await eventually(lambda: rows(db, "SELECT count(*) FROM events") == [(1,)])
    # Counted once the outcome is stored, a moment after the event row is visible.
    await eventually(lambda: skipped_once(gateway, "null_sender"))

    sink.reply_at_rcpt("550 5.1.1 no such user", ["alice@sender.test"])
    await send(gateway.smtp_port, infected())
    bounced = "SELECT count(*) FROM deliveries WHERE kind = 'virus_alert' AND state = 'bounced'"
    await eventually(lambda: rows(db, bounced) == [(1,)])
    assert rows(db, "SELECT count(*) FROM deliveries WHERE kind = 'dsn'") == [(0,)]
    sink.heal()
    await send(gateway.smtp_port, infected())
    await eventually(lambda: rows(db, "SELECT count(*) FROM events") == [(3,)])
    await eventually(lambda: skipped_once(gateway, "bounced"))
    assert rows(db, "SELECT count(*) FROM deliveries WHERE kind = 'virus_alert'") == [(1,)]
    assert alerts(sink) == {}


async def test_no_alert_to_the_sender_of_an_automatic_message(
    start_gateway: Start, sink: RecordingSink
) -> None:
    gateway = await start_gateway(domains=alerting(sink, "sender"))
    await send(gateway.smtp_port, infected(**{"Auto-Submitted": "auto-replied"}))
    db = gateway.config.store.path
    await eventually(lambda: rows(db, "SELECT count(*) FROM events") == [(1,)])
    await eventually(lambda: skipped_once(gateway, "automatic"))
    assert rows(db, "SELECT count(*) FROM deliveries WHERE kind = 'virus_alert'") == [(0,)]


def spooled(mail_from: str = "alice@acme.test", raw: bytes = b"Subject: x\r\n\r\nx") -> Spooled:
    return Spooled("q1", 1_790_000_000.0, mail_from, ("bob@far.example",), raw)


def virus(mass_mailer: bool = False) -> Verdict:
    found = VirusFinding("Eicar-Test-Signature", "eicar.com", mass_mailer=mass_mailer)
    hit = Hit("VIRUS_FOUND", Stage.ANTIVIRUS, "EICAR", action=Action.QUARANTINE, virus=found)
    return Verdict(Action.QUARANTINE, Category.VIRUS, (hit,), viruses=(found,))


def told(**kwargs: Any) -> list[str]:
    settings = kwargs.pop("settings", AlertSettings(AlertTo.BOTH, "it@acme.test"))
    planned = plan(
        kwargs.pop("message", spooled()), ("bob@far.example",), kwargs.pop("verdict", virus()),
        kwargs.pop("outcome", Outcome.QUARANTINED), settings, hostname="mx.test", now=0.0,
        suspect_sender=kwargs.pop("suspect_sender", False), **kwargs,
    )  # fmt: skip
    return [address for _, item in planned.alerts for address in item.rcpt_tos]


def test_outbound_mail_alerts_the_sender_and_admin_never_the_recipient() -> None:
    assert told(direction=Direction.OUTBOUND) == ["alice@acme.test", "it@acme.test"]
    recipient_only = AlertSettings(AlertTo.RECIPIENT, None)
    assert told(direction=Direction.OUTBOUND, settings=recipient_only) == ["alice@acme.test"]
    assert told() == ["alice@acme.test", "bob@far.example", "it@acme.test"]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ({"verdict": virus(mass_mailer=True)}, ["bob@far.example", "it@acme.test"]),
        ({"suspect_sender": True}, ["bob@far.example", "it@acme.test"]),
        ({"message": spooled("MAILER-DAEMON@acme.test")}, ["bob@far.example", "it@acme.test"]),
        ({"bounced": ["IT@acme.test"]}, ["alice@acme.test", "bob@far.example"]),
        ({"already": ["bob@far.example"]}, ["alice@acme.test", "it@acme.test"]),
        ({"outcome": Outcome.DELIVERED}, []),
        ({"verdict": Verdict(Action.QUARANTINE, Category.SPAM)}, []),
    ],
)
def test_who_is_left_out(case: dict[str, Any], expected: list[str]) -> None:
    assert told(**case) == expected


def test_a_mass_mailer_is_skipped_with_its_reason() -> None:
    planned = plan(
        spooled(), ("bob@far.example",), virus(mass_mailer=True), Outcome.DELETED,
        AlertSettings(AlertTo.SENDER), hostname="mx.test", now=0.0, suspect_sender=False,
    )  # fmt: skip
    assert planned.alerts == [] and planned.skipped == [Skipped.MASS_MAILER]


@pytest.mark.parametrize(
    ("head", "automatic"),
    [
        (b"Subject: hi\r\nAuto-Submitted: auto-replied\r\n", True),
        (b"Subject: hi\r\nAuto-Submitted: no\r\n", False),
        (b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n", True),
        (b"Content-Type: multipart/mixed; boundary=b\r\n", False),
    ],
)
def test_automatic_messages_are_recognised(head: bytes, automatic: bool) -> None:
    assert is_automatic(head + b"\r\nbody\r\n") is automatic


async def test_a_full_quarantine_keeps_a_virus_spooled_until_it_has_room(
    start_gateway: Start, sink: RecordingSink
) -> None:
    """SPEC 3 tags spam through a full quarantine; a virus waits instead, and is never sent."""
    gateway = await start_gateway(
        quarantine={"quota_per_domain": 1, "notify_new_accounts": False},
        filter={"quarantine_full_retry": 0.2},
    )
    db = gateway.config.store.path
    spam = message(sender="x@spammer.example", subject="fills the quarantine")
    await send(gateway.smtp_port, spam, sender="x@spammer.example")
    await eventually(lambda: rows(db, "SELECT category FROM quarantine") == [("spam",)])
    await send(gateway.smtp_port, infected())
    waiting = "mailmoat_quarantine_full_waiting_messages"
    await eventually(lambda: (sample(gateway, "mailmoat_quarantine_full_deferrals_total") or 0) > 1)
    assert sample(gateway, waiting) == 1.0
    assert rows(db, "SELECT state FROM messages ORDER BY received_at") == [
        ("filtered",), ("spooled",),
    ]  # fmt: skip
    assert rows(db, "SELECT count(*) FROM deliveries") == [(0,)]
    (spam_id,) = rows(db, "SELECT id FROM quarantine")[0]
    assert await gateway.quarantine.delete(Principal("ops", True), spam_id)
    held = "SELECT category, state FROM quarantine ORDER BY quarantined_at"
    await eventually(lambda: rows(db, held) == [("spam", "deleted"), ("virus", "held")])
    # The gauge drops once the writer has handed the outcome back: the row shows first.
    await eventually(lambda: sample(gateway, waiting) == 0.0)
    assert rows(db, "SELECT outcome, category FROM events ORDER BY id") == [
        ("quarantined", "spam"), ("quarantined", "virus"),
    ]  # fmt: skip
    assert rows(db, "SELECT count(*) FROM deliveries") == [(0,)]
    assert sink.received == []
