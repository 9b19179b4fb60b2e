"""Outbound mail: judged by the sender domain's policy and its ``outbound`` switches;
anti-virus runs whatever the switches say."""

from __future__ import annotations

import pytest

from filters.antivirus import VirusDatabase
from filters.facts import NO_FACTS
from filters.pipeline import evaluate
from filters.policy import PolicyError, parse_policy
from filters.runtime import Policy
from filters.signatures import SignatureDatabase
from filters.verdict import Action, Category, Stage
from tests.mailfactory import make_mail

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SENDER = "alice@customer.test"
FOREIGN = ("bob@foreign.example",)


def _policy(outbound: dict[str, bool]) -> Policy:
    customer = {
        "blacklist": ["customer.test"],  # its own users' mail counts as spam outbound
        "content_rules": [{"name": "secret", "words": ["confidential"], "action": "delete"}],
        "outbound": outbound,
    }
    config = parse_policy({"domains": {"customer.test": customer}})
    return Policy(config, VirusDatabase.builtin(), SignatureDatabase.empty(), None)


def test_outbound_mail_is_judged_by_the_senders_policy() -> None:
    mail = make_mail("the confidential memo", sender=SENDER, to=FOREIGN)
    policy = _policy({})
    outbound = evaluate(mail, NO_FACTS, policy, outbound=True)
    # Both fire; the blacklist's quarantine is more severe than the rule's delete.
    assert (outbound.action, outbound.category) == (Action.QUARANTINE, Category.SPAM)
    assert set(outbound.symbols) == {"BLACKLIST_PRIVATE", "CONTENT_RULE"}
    # Inbound, the recipient's domain (no policy of its own) decides: nothing fires.
    assert evaluate(mail, NO_FACTS, policy).action is Action.DELIVER


@pytest.mark.parametrize(
    ("switches", "action", "skipped"),
    [
        ({"spam": False}, Action.DELETE, {Stage.WHITELIST, Stage.BLACKLIST}),
        ({"content": False}, Action.QUARANTINE, {Stage.CONTENT}),
        ({"spam": False, "content": False}, Action.DELIVER, {Stage.BLACKLIST, Stage.CONTENT}),
    ],
)
def test_switches_turn_stages_off(
    switches: dict[str, bool], action: Action, skipped: set[Stage]
) -> None:
    mail = make_mail("the confidential memo", sender=SENDER, to=FOREIGN)
    verdict = evaluate(mail, NO_FACTS, _policy(switches), outbound=True)
    assert verdict.action is action
    assert skipped <= set(verdict.skipped)


def test_antivirus_runs_with_every_switch_off() -> None:
    mail = make_mail(sender=SENDER, to=FOREIGN,
                     attachments=(("a.com", "application/octet-stream", EICAR),))  # fmt: skip
    verdict = evaluate(mail, NO_FACTS, _policy({"spam": False, "content": False}), outbound=True)
    assert verdict.category is Category.VIRUS and verdict.action > Action.DELIVER


def test_an_unknown_switch_is_refused() -> None:
    with pytest.raises(PolicyError, match="outbound"):
        parse_policy({"domains": {"customer.test": {"outbound": {"virus": False}}}})
