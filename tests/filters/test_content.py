"""Content control: each condition, every action, and the scopes rules come from."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import pytest

from filters import content
from filters.policy import parse_policy
from filters.verdict import Action
from tests.mailfactory import make_mail

EXE = (("setup.exe", "application/octet-stream", b"MZ" + b"\x00" * 100),)
BIG = (("video.mp4", "video/mp4", b"\x00" * 5000),)


def _config(rule: dict[str, object], where: str = "domain") -> content.PolicyConfig:
    domain: dict[str, object] = {"admin": "admin@example.test"}
    if where == "domain":
        domain["content_rules"] = [rule]
    elif where == "user":
        domain["users"] = {"bob@example.test": {"content_rules": [rule]}}
    else:
        domain["groups"] = {"ops": {"members": ["bob@example.test"], "content_rules": [rule]}}
    return parse_policy({"domains": {"example.test": domain}})


@pytest.mark.parametrize(
    ("rule", "mail_kwargs", "matches"),
    [
        ({"header": "Subject", "pattern": "^urgent"}, {"subject": "URGENT: pay now"}, True),
        ({"header": "Subject", "pattern": "^urgent"}, {"subject": "not urgent"}, False),
        ({"header": "X-Mailer", "pattern": "bulk"}, {}, False),
        ({"words": ["confidential", "secret"]}, {"body": "This is Confidential."}, True),
        ({"words": ["secret"]}, {"body": "secretary meeting"}, False),
        ({"words": ["secret"]}, {"subject": "SECRET plans", "body": "x"}, True),
        ({"words": ["gr\u00fc\u00df"]}, {"body": "GR\u00dc\u00df euch"}, True),
        ({"words": ["secret"]}, {"body": "caf\u00e9 Secret"}, True),
        # Case-insensitive matching folds the long s to "s": the ASCII shortcut must not skip it.
        ({"words": ["\u017fecret"]}, {"body": "a secret"}, True),
        ({"attachment_types": [".exe"]}, {"attachments": EXE}, True),
        ({"attachment_types": ["application/octet-stream"]}, {"attachments": EXE}, True),
        ({"attachment_types": [".exe"]}, {"attachments": BIG}, False),
        ({"attachment_min_size": 4096}, {"attachments": BIG}, True),
        ({"attachment_min_size": 4096}, {"attachments": EXE}, False),
        (
            {"words": ["secret"], "attachment_types": [".exe"]},
            {"body": "secret", "attachments": BIG},
            False,
        ),
    ],
)
def test_conditions(rule: dict[str, object], mail_kwargs: dict[str, object], matches: bool) -> None:
    config = _config({"name": "r", "action": "log", **rule})
    hits = content.check(make_mail(**mail_kwargs), config, config.domain_policy("example.test"))  # type: ignore[arg-type]
    assert bool(hits) is matches


@pytest.mark.parametrize(
    ("action", "expected", "redirect", "copies"),
    [
        ("delete", Action.DELETE, None, ()),
        ("redirect", Action.REDIRECT, "admin@example.test", ()),
        ("copy", Action.DELIVER, None, ("admin@example.test",)),
        ("tag_header", Action.TAG_HEADER, None, ()),
        ("log", Action.DELIVER, None, ()),
    ],
)
def test_actions(
    action: str, expected: Action, redirect: str | None, copies: tuple[str, ...]
) -> None:
    config = _config({"name": "exe", "attachment_types": [".exe"], "action": action})
    hits = content.check(make_mail(attachments=EXE), config, config.domain_policy("example.test"))
    (hit,) = hits
    assert hit.symbol == "CONTENT_RULE" and "'exe'" in hit.reason
    found = (hit.action, content.redirect_to(hits), content.copy_to(hits))
    assert found == (expected, redirect, copies)


@pytest.mark.parametrize("where", ["domain", "user", "group"])
def test_rule_scopes(where: str) -> None:
    config = _config({"name": "exe", "attachment_types": [".exe"], "action": "delete"}, where)
    domain = config.domain_policy("example.test")
    (hit,) = content.check(make_mail(attachments=EXE), config, domain)
    assert hit.action is Action.DELETE
    other = make_mail(attachments=EXE, to=("eve@example.test",))
    assert bool(content.check(other, config, domain)) is (where == "domain")


def test_a_catastrophic_customer_regex_is_stopped_and_named() -> None:
    config = _config(
        {"name": "slow", "header": "Subject", "pattern": "(a|aa)+$", "action": "delete"}
    )
    config = config.model_copy(
        update={"limits": config.limits.model_copy(update={"regex_timeout": 0.05})}
    )
    mail = make_mail(subject="a" * 40 + "!")
    (hit,) = content.check(mail, config, config.domain_policy("example.test"))
    assert hit.symbol == "CONTENT_RULE_TIMEOUT" and hit.action is Action.DELIVER
    assert "'slow'" in hit.reason


def _zip(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def _tgz(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("filename", "data", "where"),
    [
        ("tools.zip", _zip("bin/setup.exe", b"MZ"), "tools.zip/bin/setup.exe"),
        ("tools.tar.gz", _tgz("setup.exe", b"MZ"), "tools.tar.gz/setup.exe"),
        ("setup.exe.gz", gzip.compress(b"MZ"), "setup.exe.gz/setup.exe"),
        ("nested.zip", _zip("in.tgz", _tgz("setup.exe", b"MZ")), "nested.zip/in.tgz/setup.exe"),
    ],
)
def test_attachment_types_match_inside_archives(filename: str, data: bytes, where: str) -> None:
    config = _config({"name": "exe", "attachment_types": [".exe"], "action": "delete"})
    mail = make_mail(attachments=((filename, "application/octet-stream", data),))
    (hit,) = content.check(mail, config, config.domain_policy("example.test"))
    assert hit.action is Action.DELETE and f"attachment {where}" in hit.reason


def test_archive_limits_bound_what_content_rules_unpack() -> None:
    config = _config({"name": "bin", "attachment_types": [".bin"], "action": "delete"})
    config = config.model_copy(
        update={"limits": config.limits.model_copy(update={"archive_bytes": 10_000})}
    )
    domain = config.domain_policy("example.test")
    small = make_mail(attachments=(("ok.zip", "application/zip", _zip("a.bin", bytes(5_000))),))
    assert len(content.check(small, config, domain)) == 1
    bomb = make_mail(attachments=(("bomb.zip", "application/zip", _zip("a.bin", bytes(10**6))),))
    # Past the limits nothing is unpacked, so nothing inside is matched: anti-virus has
    # already reported the archive as Heuristics.Limits.Exceeded.
    assert content.check(bomb, config, domain) == ()
