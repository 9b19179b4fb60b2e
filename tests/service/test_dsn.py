"""DSNs parsed back with the stdlib email package: structure, fields, and when none is sent."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage, Message, MIMEPart
from email.utils import parseaddr, parsedate_to_datetime

import pytest

from service.dsn import NO_REPLY, Failure, build_dsn, should_notify, status_from_reply

ORIGINAL = (
    b"From: Alice <alice@sender.test>\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: quarterly figures\r\n"
    b"Message-ID: <orig.1@sender.test>\r\n"
    b"\r\n"
    b"The body must not be returned.\r\n"
)
ARRIVAL = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
NOW = datetime(2024, 5, 1, 9, 45, tzinfo=UTC)
UNKNOWN_USER = Failure("bob@example.test", "5.1.1", 550, "5.1.1 <bob@example.test>: no such user")
FULL_DISK = Failure("carol@example.test", "4.2.2", 452, "4.2.2 mailbox full")


def dsn(*failures: Failure, final: bool = True, original: bytes = ORIGINAL) -> bytes:
    return build_dsn(
        original=original,
        mail_from="alice@sender.test",
        failures=failures or (UNKNOWN_USER,),
        reporting_mta="mx.mailmoat.test",
        arrival=ARRIVAL,
        now=NOW,
        final=final,
    )


def parse(raw: bytes) -> EmailMessage:
    report = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(report, EmailMessage)
    return report


def parts(report: EmailMessage) -> list[MIMEPart]:
    return list(report.iter_parts())


def status_blocks(report: EmailMessage) -> list[Message]:
    """The per-message block, then one block per recipient."""
    part = parts(report)[1]
    assert part.get_content_type() == "message/delivery-status"
    blocks = part.get_payload()
    assert isinstance(blocks, list)
    return [block for block in blocks if isinstance(block, Message)]


def address(report: EmailMessage, header: str) -> str:
    return parseaddr(str(report[header]))[1]


def test_structure_is_a_three_part_delivery_status_report() -> None:
    report = parse(dsn())
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    kinds = [part.get_content_type() for part in parts(report)]
    assert kinds == ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    assert not report.defects
    assert all(not part.defects for part in parts(report))


def test_headers_address_the_sender_from_the_mailer_daemon() -> None:
    report = parse(dsn())
    assert address(report, "From") == "MAILER-DAEMON@mx.mailmoat.test"
    assert address(report, "To") == "alice@sender.test"
    assert report["Auto-Submitted"] == "auto-replied"
    assert report["Subject"] == "Undelivered Mail Returned to Sender"
    assert parsedate_to_datetime(str(report["Date"])) == NOW
    assert str(report["Message-ID"]).endswith("@mx.mailmoat.test>")


def test_delivery_status_fields_per_message_and_per_recipient() -> None:
    per_message, *recipients = status_blocks(parse(dsn(UNKNOWN_USER, FULL_DISK)))
    assert per_message["Reporting-MTA"] == "dns; mx.mailmoat.test"
    assert per_message["Arrival-Date"] == "Wed, 01 May 2024 09:30:00 +0000"
    assert [block["Final-Recipient"] for block in recipients] == [
        "rfc822; bob@example.test",
        "rfc822; carol@example.test",
    ]
    assert [block["Action"] for block in recipients] == ["failed", "failed"]
    assert [block["Status"] for block in recipients] == ["5.1.1", "4.2.2"]
    assert recipients[0]["Diagnostic-Code"] == "smtp; 550 5.1.1 <bob@example.test>: no such user"


def test_delayed_report_says_delayed_and_keeps_trying() -> None:
    report = parse(dsn(FULL_DISK, final=False))
    assert report["Subject"] == "Delayed Mail (still being retried)"
    (block,) = status_blocks(report)[1:]
    assert block["Action"] == "delayed"
    assert "will keep trying" in parts(report)[0].get_content()


def test_failure_without_a_reply_uses_a_private_diagnostic_type() -> None:
    refused = Failure("bob@example.test", "4.4.1", NO_REPLY, "mx.example.test:25: refused")
    (block,) = status_blocks(parse(dsn(refused)))[1:]
    assert block["Diagnostic-Code"] == "X-Mailmoat; mx.example.test:25: refused"


def test_only_the_original_headers_are_returned() -> None:
    headers = parts(parse(dsn()))[2]
    returned = email.message_from_string(headers.get_content())
    assert returned["Subject"] == "quarterly figures"
    assert returned["Message-ID"] == "<orig.1@sender.test>"
    assert b"must not be returned" not in dsn()


def test_human_readable_part_names_each_recipient_and_reason() -> None:
    text = parts(parse(dsn(UNKNOWN_USER, FULL_DISK)))[0].get_content()
    assert "mx.mailmoat.test" in text
    assert "<bob@example.test>: smtp; 550 5.1.1" in text
    assert "<carol@example.test>: smtp; 452 4.2.2 mailbox full" in text


def test_output_is_crlf_only_and_lines_stay_short() -> None:
    long_reply = Failure("bob@example.test", "5.0.0", 550, "x" * 5000 + "\r\nsecond line")
    raw = dsn(long_reply, original=ORIGINAL.replace(b"\r\n", b"\n"))
    assert re.search(rb"(?<!\r)\n", raw) is None
    assert max(len(line) for line in raw.split(b"\r\n")) < 998


def test_same_inputs_give_the_same_bytes() -> None:
    assert dsn() == dsn()
    assert parse(dsn())["Message-ID"] != parse(dsn(final=False))["Message-ID"]


def test_utf8_addresses_use_the_global_types() -> None:
    raw = build_dsn(
        original=ORIGINAL,
        mail_from="ålice@sender.test",
        failures=[Failure("bøb@example.test", "5.1.1", 550, "no such user")],
        reporting_mta="mx.mailmoat.test",
        arrival=ARRIVAL,
        now=NOW,
    )
    kinds = [part.get_content_type() for part in parts(parse(raw))]
    assert kinds == ["text/plain", "message/global-delivery-status", "message/global-headers"]
    assert "Final-Recipient: utf-8; bøb@example.test".encode() in raw


@pytest.mark.parametrize(
    "failures", [[], [Failure("bob@example.test\r\nBcc: x@evil.test", "5.0.0", 550, "no")]]
)
def test_no_recipients_or_line_breaks_are_programming_errors(failures: list[Failure]) -> None:
    with pytest.raises(ValueError):
        build_dsn(
            original=ORIGINAL,
            mail_from="alice@sender.test",
            failures=failures,
            reporting_mta="mx.mailmoat.test",
            arrival=ARRIVAL,
            now=NOW,
        )


@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        (550, "5.1.1 no such user", "5.1.1"),
        (451, "4.7.1 greylisted", "4.7.1"),
        (550, "no such user", "5.0.0"),
        (421, "service closing", "4.0.0"),
        (550, "4.2.2 contradicts its code", "5.0.0"),
        (354, "odd reply where a failure was expected", "4.0.0"),
    ],
)
def test_status_from_reply(code: int, message: str, status: str) -> None:
    assert status_from_reply(code, message) == status


@pytest.mark.parametrize(
    ("mail_from", "is_spam", "notify"),
    [
        ("alice@sender.test", False, True),
        ("alice@sender.test", True, False),  # forged senders: no backscatter
        ("", False, False),  # never bounce a bounce
        ("<>", False, False),
        ("MAILER-DAEMON@other.test", False, False),
        ("postmaster@other.test", False, False),
        ("postmaster-team@other.test", False, True),
    ],
)
def test_should_notify(mail_from: str, is_spam: bool, notify: bool) -> None:
    assert should_notify(mail_from, is_spam) is notify
