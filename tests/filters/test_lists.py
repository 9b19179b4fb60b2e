"""Whitelist and private blacklist stages across user, group, domain and global scopes."""

from __future__ import annotations

import pytest

from filters import blacklist, whitelist
from filters.facts import NO_FACTS
from filters.lists import match_entry
from filters.policy import parse_policy
from filters.verdict import Action, Stage
from tests.mailfactory import make_mail

CONFIG = parse_policy(
    {
        "whitelist": ["global-friend.example"],
        "blacklist": ["global-spammer.example"],
        "domains": {
            "example.test": {
                "whitelist": ["partner.example"],
                "blacklist": ["rival.example"],
                "actions": {"blacklist": "tag_subject"},
                "users": {
                    "Bob@example.test": {
                        "whitelist": ["mum@home.example"],
                        "blacklist": ["ex@home.example"],
                    }
                },
                "groups": {
                    "sales": {
                        "members": ["carol@example.test", "dan@example.test"],
                        "whitelist": ["lead@crm.example"],
                    }
                },
            }
        },
    }
)
DOMAIN = CONFIG.domain_policy("example.test")


@pytest.mark.parametrize(
    ("sender", "entries", "expected"),
    [
        ("a@x.example", ["a@x.example"], "a@x.example"),
        ("a@mail.x.example", ["x.example"], "x.example"),
        ("a@notx.example", ["x.example"], None),
        ("b@x.example", ["a@x.example"], None),
        ("", ["x.example"], None),
    ],
)
def test_match_entry(sender: str, entries: list[str], expected: str | None) -> None:
    assert match_entry(sender, entries) == expected


@pytest.mark.parametrize(
    ("sender", "to", "scope"),
    [
        ("x@global-friend.example", ("bob@example.test",), "global"),
        ("x@partner.example", ("bob@example.test", "eve@example.test"), "domain example.test"),
        ("mum@home.example", ("bob@example.test",), "user bob@example.test"),
        ("lead@crm.example", ("carol@example.test", "dan@example.test"), "group sales"),
    ],
)
def test_whitelisted(sender: str, to: tuple[str, ...], scope: str) -> None:
    (hit,) = whitelist.check(make_mail(sender=sender, to=to), CONFIG, DOMAIN)
    assert hit.stage is Stage.WHITELIST and hit.symbol == "WHITELIST"
    assert scope in hit.reason


@pytest.mark.parametrize(
    ("sender", "to"),
    [
        ("mum@home.example", ("bob@example.test", "eve@example.test")),  # only bob trusts her
        ("lead@crm.example", ("carol@example.test", "eve@example.test")),
        ("stranger@else.example", ("bob@example.test",)),
    ],
)
def test_not_whitelisted(sender: str, to: tuple[str, ...]) -> None:
    assert whitelist.check(make_mail(sender=sender, to=to), CONFIG, DOMAIN) == ()


@pytest.mark.parametrize(
    ("sender", "to", "scope"),
    [
        ("a@global-spammer.example", ("eve@example.test",), "global"),
        ("a@rival.example", ("eve@example.test",), "domain example.test"),
        ("ex@home.example", ("eve@example.test", "bob@example.test"), "user bob@example.test"),
    ],
)
def test_private_blacklist(sender: str, to: tuple[str, ...], scope: str) -> None:
    hits = blacklist.check(make_mail(sender=sender, to=to), NO_FACTS, CONFIG, DOMAIN)
    assert [h.symbol for h in hits] == ["BLACKLIST_PRIVATE"]
    assert hits[0].action is Action.TAG_SUBJECT and scope in hits[0].reason


def test_envelope_sender_is_what_lists_match() -> None:
    mail = make_mail(sender="a@rival.example")
    assert mail.sender == "a@rival.example"
    assert blacklist.check(mail, NO_FACTS, CONFIG, DOMAIN)
