"""Release targets: original recipients and the customer's own domains only, never the sender."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from quarantine.release_rules import (
    ReleaseRefused,
    normalise_address,
    release_targets,
    virus_release_allowed,
)

DOMAINS = ("example.test", "Sub.Example.ORG.")
GROUP = ("alice@example.test", "bob@example.test", "carol@partner.test")
SENDER = "mallory@evil.test"


def targets(
    requested: Sequence[str] | None,
    original: Sequence[str] = GROUP,
    sender: str = SENDER,
) -> tuple[str, ...]:
    return release_targets(
        requested=requested, original_rcpts=original, sender=sender, customer_domains=DOMAINS
    )


@pytest.mark.parametrize("requested", [None, [], ()])
def test_no_request_goes_to_every_original_recipient(requested: Sequence[str] | None) -> None:
    assert targets(requested) == GROUP


def test_original_recipients_are_normalised_and_deduplicated() -> None:
    original = ["<Alice@EXAMPLE.test>", " bob@example.test ", "Alice@example.TEST"]
    assert targets(None, original) == ("Alice@example.test", "bob@example.test")


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (["bob@example.test"], ("bob@example.test",)),
        (["<bob@example.test>"], ("bob@example.test",)),
        (["bob@EXAMPLE.Test"], ("bob@example.test",)),
        # an original recipient outside the customer's domains
        (["carol@partner.test"], ("carol@partner.test",)),
        (["carol@PARTNER.test"], ("carol@partner.test",)),
        # another mailbox in the customer's domains
        (["helpdesk@example.test"], ("helpdesk@example.test",)),
        (["x@sub.example.org"], ("x@sub.example.org",)),
        (["x@sub.example.org."], ("x@sub.example.org",)),
        # several at once, duplicates folded, order kept
        (
            ["helpdesk@example.test", "carol@partner.test", "<helpdesk@Example.test>"],
            ("helpdesk@example.test", "carol@partner.test"),
        ),
        (list(GROUP), GROUP),
    ],
)
def test_allowed_requests(requested: list[str], expected: tuple[str, ...]) -> None:
    assert targets(requested) == expected


@pytest.mark.parametrize(
    ("requested", "culprit", "why"),
    [
        (["outsider@elsewhere.test"], "outsider@elsewhere.test", "neither an original"),
        (["bob@example.test", "outsider@elsewhere.test"], "outsider@elsewhere.test", "neither"),
        # a sibling of an original recipient's non-customer domain is still a third party
        (["dave@partner.test"], "dave@partner.test", "neither"),
        # the local part of a non-customer original recipient is compared exactly
        (["Carol@partner.test"], "Carol@partner.test", "neither"),
        # customer domains match exactly: neither subdomains nor parents
        (["x@mail.example.test"], "x@mail.example.test", "neither"),
        (["x@example.org"], "x@example.org", "neither"),
        (["x@example.test.evil.test"], "x@example.test.evil.test", "neither"),
        # the sender, however written
        ([SENDER], SENDER, "never released back to the sender"),
        (["<MALLORY@Evil.Test>"], "MALLORY@evil.test", "sender"),
    ],
)
def test_forbidden_requests_name_the_address(requested: list[str], culprit: str, why: str) -> None:
    with pytest.raises(ReleaseRefused, match=why) as caught:
        targets(requested)
    assert caught.value.address == culprit
    assert culprit in caught.value.reason


@pytest.mark.parametrize("sender", ["bob@example.test", "BOB@example.test", "<bob@Example.TEST>"])
def test_sender_in_the_customers_domain_is_still_refused(sender: str) -> None:
    with pytest.raises(ReleaseRefused, match="sender"):
        targets(["bob@example.test"], sender=sender)


def test_sender_who_was_also_a_recipient_is_left_out_of_a_group_release() -> None:
    assert targets(None, sender="bob@example.test") == ("alice@example.test", "carol@partner.test")


def test_release_with_only_the_sender_as_recipient_is_refused() -> None:
    with pytest.raises(ReleaseRefused, match="no original recipient"):
        targets(None, original=["bob@example.test"], sender="bob@example.test")


def test_no_original_recipients_is_refused() -> None:
    with pytest.raises(ReleaseRefused, match="no original recipient"):
        targets(None, original=[])


@pytest.mark.parametrize("sender", ["", "<>", "not an address", "a@@b"])
def test_null_or_broken_sender_blocks_nobody(sender: str) -> None:
    assert targets(None, sender=sender) == GROUP
    assert targets(["helpdesk@example.test"], sender=sender) == ("helpdesk@example.test",)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "<>",
        "bob",
        "bob@",
        "@example.test",
        "bob@example",
        "bob@@example.test",
        "bob@exa mple.test",
        "bob smith@example.test",
        '"bob"@example.test',
        "Bob <bob@example.test>",
        "bob@example.test, eve@evil.test",
        "bob@example.test\r\nBcc: eve@evil.test",
        "bob@[192.0.2.1]",
        "bob@-example.test",
        "bob@example-.test",
        "bob@exa_mple.test",
        "bob@example..test",
        "bob@example.test..",
        ".bob@example.test",
        "bob.@example.test",
        "bo..b@example.test",
        "bob\x00@example.test",
        "bob\u00a0x@example.test",
        "b" * 65 + "@example.test",
        "bob@" + "a" * 64 + ".test",
        "bob@" + ".".join(["a" * 60] * 5) + ".test",
    ],
)
def test_invalid_syntax_is_refused(bad: str) -> None:
    with pytest.raises(ReleaseRefused, match="not a valid address"):
        targets([bad])


@pytest.mark.parametrize(
    ("address", "normal"),
    [
        ("Bob.O'Neil+tag@Example.TEST", "Bob.O'Neil+tag@example.test"),
        (" <bob@example.test> ", "bob@example.test"),
        ("josé@example.test", "josé@example.test"),
        ("bob@bücher.example", "bob@xn--bcher-kva.example"),
        ("bob@BÜCHER.example", "bob@xn--bcher-kva.example"),
        ("x!#$%&*/=?^_`{|}~-@example.test", "x!#$%&*/=?^_`{|}~-@example.test"),
    ],
)
def test_normalise_address(address: str, normal: str) -> None:
    assert normalise_address(address) == normal


def test_idn_customer_domain_matches_either_spelling() -> None:
    assert release_targets(
        requested=["bob@BÜCHER.example"],
        original_rcpts=["alice@bücher.example"],
        sender=SENDER,
        customer_domains=["xn--bcher-kva.example"],
    ) == ("bob@xn--bcher-kva.example",)


def test_unicode_customer_domain_matches_either_spelling() -> None:
    assert release_targets(
        requested=["bob@xn--bcher-kva.example"],
        original_rcpts=["alice@bücher.example"],
        sender=SENDER,
        customer_domains=[" Bücher.example "],
    ) == ("bob@xn--bcher-kva.example",)


@pytest.mark.parametrize("domain", ["", "localhost", "exa_mple.test", "[192.0.2.1]"])
def test_bad_customer_domain_is_a_configuration_error(domain: str) -> None:
    with pytest.raises(ValueError, match="customer domain") as caught:
        release_targets(
            requested=["bob@example.test"],
            original_rcpts=GROUP,
            sender=SENDER,
            customer_domains=[domain],
        )
    assert not isinstance(caught.value, ReleaseRefused)


def test_invalid_original_recipient_is_refused_by_name() -> None:
    with pytest.raises(ReleaseRefused) as caught:
        targets(None, original=["alice@example.test", "broken"])
    assert caught.value.address == "broken"


def test_refusal_is_a_value_error() -> None:
    assert issubclass(ReleaseRefused, ValueError)


@pytest.mark.parametrize(
    ("never_release", "authorised", "why"),
    [
        (True, True, "never-release"),
        (True, False, "never-release"),
        (False, False, "authorisation record"),
    ],
)
def test_virus_release_refusals(never_release: bool, authorised: bool, why: str) -> None:
    with pytest.raises(ReleaseRefused, match=why) as caught:
        virus_release_allowed(never_release=never_release, authorised=authorised)
    assert caught.value.address is None


def test_authorised_virus_release_is_allowed() -> None:
    virus_release_allowed(never_release=False, authorised=True)
