"""Compress attachments: picked attachments become one valid zip; the rest stays as it was."""

from __future__ import annotations

import email
import io
import zipfile
from email.message import Message
from email.policy import default

import pytest

from filters.antivirus import VirusDatabase
from filters.compress import HEADER, ZIP_NAME, compress_attachments
from filters.facts import NO_FACTS
from filters.mail import Mail
from filters.pipeline import evaluate
from filters.policy import parse_policy
from filters.runtime import Policy
from filters.signatures import SignatureDatabase
from filters.verdict import Action
from tests.mailfactory import make_mail

DOC = ("report.doc", "application/msword", b"DOC" * 4000)
EXE = ("setup.exe", "application/octet-stream", b"MZ" + bytes(3000))
PNG = ("logo.png", "image/png", b"\x89PNG" + bytes(100))


def _reparsed(raw: bytes) -> Message:
    """The rewritten message read back strictly: it must still be valid MIME."""
    message = email.message_from_bytes(raw, policy=default)
    assert not message.defects
    assert all(not part.defects for part in message.walk())
    return message


def _zip_members(message: Message) -> dict[str, bytes]:
    (part,) = [p for p in message.walk() if p.get_filename() == ZIP_NAME]
    assert part.get_content_type() == "application/zip"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())
        return {name: archive.read(name) for name in archive.namelist()}


def test_picked_attachments_are_zipped_and_the_rest_kept() -> None:
    mail = make_mail("see attached", attachments=(DOC, EXE, PNG))
    raw = compress_attachments(mail.raw, (0, 1))
    assert raw is not None
    message = _reparsed(raw)
    assert _zip_members(message) == {"report.doc": DOC[2], "setup.exe": EXE[2]}
    names = [p.get_filename() for p in message.walk() if p.get_filename()]
    assert names == [ZIP_NAME, "logo.png"]
    assert message[HEADER] == f"2 attachment(s) into {ZIP_NAME}: report.doc, setup.exe"
    again = Mail(raw)
    assert "see attached" in again.text
    assert again.subject == mail.subject
    assert [a.filename for a in again.attachments] == [ZIP_NAME, "logo.png"]


def test_a_message_that_is_one_attachment_gets_the_zip_as_its_body() -> None:
    raw = (
        b"From: a@partner.example\r\nTo: bob@example.test\r\nSubject: bin\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="../../x.exe"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nTVoAAA==\r\n"
    )
    out = compress_attachments(raw, (0,))
    assert out is not None
    message = _reparsed(out)
    assert message.get_content_type() == "application/zip"
    assert _zip_members(message) == {"x.exe": b"MZ\x00\x00"}


@pytest.mark.parametrize("positions", [(), (7,)])
def test_nothing_to_compress_gives_none(positions: tuple[int, ...]) -> None:
    assert compress_attachments(make_mail(attachments=(DOC,)).raw, positions) is None


def _policy(rule: dict[str, object], **domain: object) -> Policy:
    config = parse_policy(
        {"domains": {"example.test": {"content_rules": [rule], "admin": "it@example.test",
                                      **domain}}}
    )  # fmt: skip
    return Policy(config, VirusDatabase.builtin(), SignatureDatabase.empty(), None)


def test_a_compress_rule_delivers_the_rewritten_message() -> None:
    rule = {"name": "big-files", "attachment_min_size": 2000, "action": "compress"}
    verdict = evaluate(make_mail(attachments=(DOC, PNG, EXE)), NO_FACTS, _policy(rule))
    assert verdict.action is Action.DELIVER
    (hit,) = [h for h in verdict.hits if h.symbol == "CONTENT_RULE"]
    assert (hit.rule, hit.attachments) == ("big-files", (0, 2))
    assert verdict.rewritten is not None
    assert set(_zip_members(_reparsed(verdict.rewritten))) == {"report.doc", "setup.exe"}


def test_a_words_rule_compresses_every_attachment() -> None:
    rule = {"name": "pack", "words": ["attached"], "action": "compress"}
    mail = make_mail("as attached", attachments=(DOC, PNG))
    verdict = evaluate(mail, NO_FACTS, _policy(rule))
    assert verdict.rewritten is not None
    assert set(_zip_members(_reparsed(verdict.rewritten))) == {"report.doc", "logo.png"}


def test_held_or_deleted_mail_is_not_rewritten() -> None:
    rules = [
        {"name": "pack", "attachment_types": [".doc"], "action": "compress"},
        {"name": "drop", "attachment_types": [".exe"], "action": "delete"},
    ]
    config = parse_policy({"domains": {"example.test": {"content_rules": rules}}})
    policy = Policy(config, VirusDatabase.builtin(), SignatureDatabase.empty(), None)
    verdict = evaluate(make_mail(attachments=(DOC, EXE)), NO_FACTS, policy)
    assert verdict.action is Action.DELETE and verdict.rewritten is None
