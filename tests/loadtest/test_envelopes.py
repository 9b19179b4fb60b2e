"""Envelopes from headers or mapped into a test domain; messages with no recipient are reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.corpus import CorpusError, CorpusItem
from loadtest.envelopes import envelope_of, prepare, without_from_line
from loadtest.smtpclient import Envelope

HEADERS = (
    b"Return-Path: <bounce@lists.sender.test>\n"
    b"From: Alice <alice@sender.test>\n"
    b"To: Bob <Bob@corp.example>, carol@corp.example\n"
    b'Cc: "Dave, D." <dave@other.example>, bob@corp.example\n'
    b"Subject: hi\n\nTo: body@not.a.header\n"
)


def test_envelope_from_the_headers() -> None:
    assert envelope_of(HEADERS) == Envelope(
        "bounce@lists.sender.test",
        ("Bob@corp.example", "carol@corp.example", "dave@other.example", "bob@corp.example"),
    )
    assert envelope_of(b"From: a@s.test\nTo: b@x.test\n\n") == Envelope("a@s.test", ("b@x.test",))


def test_mapping_into_a_test_domain_is_deterministic_and_keeps_local_parts() -> None:
    mapped = envelope_of(HEADERS, "example.test")
    assert mapped == Envelope(
        "bounce@lists.sender.test",
        ("bob@example.test", "carol@example.test", "dave@example.test"),
    )
    odd = envelope_of(b'To: "odd local"@x.test, =?utf-8?q?x?= <a..b@x.test>\n\n', "example.test")
    again = envelope_of(b'To: "odd local"@x.test, =?utf-8?q?x?= <a..b@x.test>\n\n', "example.test")
    assert odd == again and odd is not None
    assert all(r.startswith("r") and r.endswith("@example.test") for r in odd.rcpt_tos)


@pytest.mark.parametrize(
    ("data", "domain", "expected"),
    [
        (b"Subject: no recipients\n\n", None, None),
        (b"Subject: no recipients\n\n", "example.test", Envelope("", ("replay@example.test",))),
        (
            b"From: not an address\nTo: <>\n\n",
            "example.test",
            Envelope("", ("replay@example.test",)),
        ),
        (b"To: b\xc3\xa9@x.test\n\n", None, None),  # raw 8-bit addresses are not used
        (b"To: b\xc3\xa9@x.test\n\n", "t.test", Envelope("", ("replay@t.test",))),
    ],
)
def test_messages_without_a_usable_recipient(
    data: bytes, domain: str | None, expected: Envelope | None
) -> None:
    assert envelope_of(data, domain) == expected


def test_prepare_reports_a_message_without_recipient_by_file(tmp_path: Path) -> None:
    items = [
        CorpusItem(
            tmp_path / "a.eml", "ham", b"From x@s.test Mon Jan 1 00:00:00 2024\nTo: b@x.test\n\n.\n"
        ),
        CorpusItem(tmp_path / "b.eml", "spam", b"Subject: nobody\n\n"),
    ]
    errors: list[CorpusError] = []
    prepared = prepare(items, None, errors.append)
    assert [p.name for p in prepared] == [str(tmp_path / "a.eml")]
    assert prepared[0].payload == b"To: b@x.test\r\n\r\n..\r\n.\r\n"
    assert prepared[0].size == len(b"To: b@x.test\n\n.\n")
    assert [e.path.name for e in errors] == ["b.eml"] and "--domain" in str(errors[0])


def test_without_from_line() -> None:
    assert without_from_line(b"From a@b Mon\nSubject: x\n\n") == b"Subject: x\n\n"
    assert without_from_line(b"From: a@b\n\n") == b"From: a@b\n\n"
    assert without_from_line(b"From nowhere") == b""
