"""The pipeline: stage order, the severity rule in every order of hits, and final verdicts."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from filters.antivirus import VirusDatabase
from filters.facts import NO_FACTS
from filters.mail import Mail
from filters.pipeline import evaluate
from filters.policy import parse_policy
from filters.runtime import Policy
from filters.signatures import SignatureDatabase, signature_lines
from filters.verdict import Action, Category, Stage
from tests.filters.test_mail import MALFORMED
from tests.mailfactory import make_mail

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SPAM_BODY = (
    "Dear friend, you have been selected for an exclusive investment opportunity with "
    "guaranteed returns of 40 percent every month. Reply today with your bank details "
    "and our account manager will transfer the welcome bonus within 24 hours."
)
SPAM_ACTIONS = [
    Action.TAG_HEADER,
    Action.TAG_SUBJECT,
    Action.REDIRECT,
    Action.DELETE,
    Action.QUARANTINE,
]


def _policy(
    tmp_path: Path,
    domain: dict[str, object],
    *,
    signed: Mail | None = None,
    top: dict[str, object] | None = None,
) -> Policy:
    config = parse_policy({**(top or {}), "domains": {"example.test": domain}})
    signatures = SignatureDatabase.empty()
    if signed is not None:
        path = tmp_path / "spam.sigs"
        path.write_text("\n".join(signature_lines([("campaign-1", signed)])) + "\n")
        signatures = SignatureDatabase.load(path)
    return Policy(config, VirusDatabase.builtin(), signatures, None)


def _orders() -> list[tuple[Action | None, Action, Action]]:
    return list(itertools.product([None, *SPAM_ACTIONS], SPAM_ACTIONS, SPAM_ACTIONS))


@pytest.mark.parametrize(("black", "sig", "heur"), _orders())
def test_severity_rule_in_every_order(
    tmp_path: Path, black: Action | None, sig: Action, heur: Action
) -> None:
    mail = make_mail(SPAM_BODY, sender="promo@offers.example")
    domain: dict[str, object] = {
        "redirect_to": "review@example.test",
        "actions": {"blacklist": (black or Action.QUARANTINE).label, "signatures": sig.label},
        # A threshold no score misses: heuristics fire whenever they run.
        "heuristics": {"thresholds": {heur.label: -1000.0}},
    }
    if black is not None:
        domain["blacklist"] = ["offers.example"]
    verdict = evaluate(mail, NO_FACTS, _policy(tmp_path, domain, signed=mail))

    # A later stage runs only if it is more severe and the message was not deleted.
    expected = black or Action.DELIVER
    signatures_ran = sig > expected and expected is not Action.DELETE
    expected = max(expected, sig) if signatures_ran else expected
    heuristics_ran = heur > expected and expected is not Action.DELETE
    expected = max(expected, heur) if heuristics_ran else expected

    stages = {h.stage.value for h in verdict.hits}
    assert verdict.action is expected
    assert verdict.category is Category.SPAM
    assert ("blacklist" in stages) is (black is not None)
    assert ("signatures" in stages) is signatures_ran
    assert ("heuristics" in stages) is heuristics_ran


def test_blacklist_delete_is_final_even_before_a_quarantining_signature(tmp_path: Path) -> None:
    mail = make_mail(SPAM_BODY, sender="promo@offers.example")
    domain = {
        "blacklist": ["offers.example"],
        "actions": {"blacklist": "delete", "signatures": "quarantine"},
        "heuristics": {"thresholds": {"quarantine": -1000.0}},
        "content_rules": [{"name": "any", "words": ["investment"], "action": "tag_header"}],
    }
    verdict = evaluate(mail, NO_FACTS, _policy(tmp_path, domain, signed=mail))
    assert (verdict.action, verdict.category) == (Action.DELETE, Category.SPAM)
    assert verdict.symbols == ("BLACKLIST_PRIVATE",)
    assert verdict.skipped == (Stage.SIGNATURES, Stage.HEURISTICS, Stage.CONTENT)
    assert "not run: signatures, heuristics, content" in verdict.explain()


def test_signature_delete_skips_a_quarantining_heuristic(tmp_path: Path) -> None:
    mail = make_mail(SPAM_BODY, sender="promo@offers.example")
    domain = {
        "actions": {"signatures": "delete"},
        "heuristics": {"thresholds": {"quarantine": -1000.0}},
    }
    verdict = evaluate(mail, NO_FACTS, _policy(tmp_path, domain, signed=mail))
    assert verdict.action is Action.DELETE
    assert verdict.symbols == ("SIGNATURE_EXACT",)
    assert verdict.skipped == (Stage.HEURISTICS, Stage.CONTENT)


def test_whitelist_ends_spam_checks(tmp_path: Path) -> None:
    mail = make_mail(SPAM_BODY, sender="promo@offers.example")
    domain = {
        "whitelist": ["promo@offers.example"],
        "blacklist": ["offers.example"],
        "heuristics": {"thresholds": {"quarantine": -1000.0}},
    }
    verdict = evaluate(mail, NO_FACTS, _policy(tmp_path, domain, signed=mail))
    assert verdict.action is Action.DELIVER and verdict.category is Category.CLEAN
    assert verdict.symbols == ("WHITELIST",)


def test_content_rules_apply_to_whitelisted_senders(tmp_path: Path) -> None:
    mail = make_mail(attachments=(("x.exe", "application/octet-stream", b"MZ"),))
    domain = {
        "whitelist": ["partner.example"],
        "content_rules": [{"name": "exe", "attachment_types": [".exe"], "action": "delete"}],
    }
    verdict = evaluate(mail, NO_FACTS, _policy(tmp_path, domain))
    assert (verdict.action, verdict.category) == (Action.DELETE, Category.CONTENT)
    assert verdict.symbols == ("WHITELIST", "CONTENT_RULE")


def test_spam_more_severe_than_content_keeps_spam(tmp_path: Path) -> None:
    mail = make_mail("please read the confidential memo", sender="x@offers.example")
    domain = {
        "admin": "admin@example.test",
        "blacklist": ["offers.example"],
        "content_rules": [
            {"name": "conf", "words": ["confidential"], "action": "copy"},
            {"name": "tag", "words": ["memo"], "action": "tag_header"},
        ],
    }
    verdict = evaluate(mail, NO_FACTS, _policy(tmp_path, domain))
    assert (verdict.action, verdict.category) == (Action.QUARANTINE, Category.SPAM)
    assert verdict.copy_to == ("admin@example.test",)


@pytest.mark.parametrize(
    ("action", "redirect_to", "subject_tag"),
    [(Action.REDIRECT, "review@example.test", None), (Action.TAG_SUBJECT, None, "[junk]")],
)
def test_action_details(
    tmp_path: Path, action: Action, redirect_to: str | None, subject_tag: str | None
) -> None:
    domain = {
        "blacklist": ["offers.example"],
        "actions": {"blacklist": action.label},
        "redirect_to": "review@example.test",
        "subject_tag": "[junk]",
        "heuristics": {"thresholds": {}},
    }
    verdict = evaluate(make_mail(sender="a@offers.example"), NO_FACTS, _policy(tmp_path, domain))
    assert (verdict.action, verdict.redirect_to, verdict.subject_tag) == (
        action,
        redirect_to,
        subject_tag,
    )


@pytest.mark.parametrize(
    ("patterns", "action", "symbol"),
    [([], Action.QUARANTINE, "VIRUS_FOUND"), (["Eicar*"], Action.DELETE, "VIRUS_MASS_MAILER")],
)
def test_virus_decides_alone(
    tmp_path: Path, patterns: list[str], action: Action, symbol: str
) -> None:
    mail = make_mail(
        sender="friend@partner.example",
        attachments=(("readme.com", "application/octet-stream", EICAR),),
    )
    config = parse_policy({"domains": {"example.test": {"whitelist": ["partner.example"]}}})
    viruses = VirusDatabase.load([], mass_mailer=patterns, never_release=["Eicar*"])
    verdict = evaluate(mail, NO_FACTS, Policy(config, viruses, SignatureDatabase.empty(), None))
    assert (verdict.action, verdict.category) == (action, Category.VIRUS)
    assert symbol in verdict.symbols and verdict.never_release


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_messages_get_a_verdict(tmp_path: Path, raw: bytes) -> None:
    verdict = evaluate(Mail(raw), NO_FACTS, _policy(tmp_path, {}))
    assert isinstance(verdict.action, Action)


def test_runtime_list_entries_from_facts_apply(tmp_path: Path) -> None:
    from filters.facts import Facts
    from filters.lists import DomainLists
    from filters.policy import Lists

    mail = make_mail(SPAM_BODY, sender="promo@offers.example")
    policy = _policy(tmp_path, {"heuristics": {"thresholds": {"quarantine": -1000.0}}})
    assert evaluate(mail, NO_FACTS, policy).action is Action.QUARANTINE
    trusted = Facts(
        lists={
            "example.test": DomainLists(
                users={"bob@example.test": Lists(whitelist=["offers.example"])}
            )
        }
    )
    assert evaluate(mail, trusted, policy).symbols == ("WHITELIST",)
    blocked = Facts(lists={"example.test": DomainLists(domain=Lists(blacklist=["offers.example"]))})
    assert "BLACKLIST_PRIVATE" in evaluate(mail, blocked, policy).symbols
