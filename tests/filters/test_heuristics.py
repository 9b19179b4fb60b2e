"""The heuristics stage adds rule and model scores and asks for the policy's action."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pytest

from filters import heuristics
from filters.mail import Mail
from filters.model import TokenModel
from filters.policy import HeuristicsPolicy
from filters.symbols import default_score
from filters.verdict import Action, Hit, Stage, total_score

PLAIN = b"From: a@example.org\nDate: Mon, 02 Sep 2002 10:00:00 +0000\nMessage-ID: <1@x>\n\nhello\n"
GTUBE_LINE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n"
NO_DATE = b"From: a@example.org\nMessage-ID: <1@x>\n\nhello\n"


@dataclass(frozen=True)
class FixedModel(TokenModel):
    """A model whose probability is fixed, so scores are easy to check by hand."""

    p: float = 0.5

    def spam_probability(self, mail: Mail, fired: Iterable[str] | None = None) -> float:
        return self.p


def run(
    mail: Mail,
    model: TokenModel | None,
    policy: HeuristicsPolicy,
    scores: dict[str, float] | None = None,
) -> tuple[tuple[Hit, ...], float]:
    """The stage's hits and the score they add up to."""
    hits = heuristics.check(mail, model, policy, scores or {})
    return hits, total_score(hits)


def fixed(p: float) -> FixedModel:
    return FixedModel({}, 0.0, {}, p=p)


def test_plain_message_without_model_scores_zero() -> None:
    hits, total = run(Mail(PLAIN), None, HeuristicsPolicy())
    assert hits == () and total == 0.0


def test_rule_hit_and_model_contribution_add_up() -> None:
    hits, total = run(Mail(NO_DATE), None, HeuristicsPolicy())
    assert [(h.symbol, h.score) for h in hits] == [("MISSING_DATE", 1.0)] and total == 1.0
    policy = HeuristicsPolicy(rule_scores={"MISSING_DATE": 0.5})
    hits, total = run(Mail(NO_DATE), fixed(0.75), policy)
    scores = {h.symbol: h.score for h in hits}
    assert scores == {"MISSING_DATE": 0.5, "HEURISTIC_MODEL": 5.0, "HEURISTIC_SPAM": 0.0}
    assert total == 5.5
    assert all(h.stage is Stage.HEURISTICS for h in hits)
    spam = hits[-1]
    assert spam.action is Action.TAG_HEADER and "5.50" in spam.reason
    assert all(h.action is Action.DELIVER for h in hits[:-1])
    assert "0.750" in hits[1].reason


def test_with_a_model_rules_explain_but_do_not_count_twice() -> None:
    """The model learned each rule's weight: the hit is reported, its default adds nothing."""
    seen: list[list[str]] = []

    @dataclass(frozen=True)
    class Recording(FixedModel):
        def spam_probability(self, mail: Mail, fired: Iterable[str] | None = None) -> float:
            seen.append(list(fired or ()))
            return self.p

    hits, total = run(Mail(NO_DATE), Recording({}, 0.0, {}, p=0.5), HeuristicsPolicy())
    assert [(h.symbol, h.score) for h in hits] == [("MISSING_DATE", 0.0), ("HEURISTIC_MODEL", 0.0)]
    assert "no Date header" in hits[0].reason and total == 0.0
    assert seen == [["MISSING_DATE"]]


def test_quarantine_threshold_and_sure_ham() -> None:
    hits, total = run(Mail(PLAIN), fixed(0.9), HeuristicsPolicy())
    assert total == 8.0 and hits[-1].action is Action.QUARANTINE
    hits, total = run(Mail(PLAIN), fixed(0.0), HeuristicsPolicy())
    assert total == -10.0 and [h.symbol for h in hits] == ["HEURISTIC_MODEL"]


def test_policy_overrides_and_disables_rule_scores() -> None:
    policy = HeuristicsPolicy(rule_scores={"MISSING_DATE": 4.5})
    hits, total = run(Mail(NO_DATE), None, policy)
    assert total == 4.5 and hits[0].score == 4.5
    hits, total = run(Mail(NO_DATE), None, HeuristicsPolicy(rule_scores={"MISSING_DATE": 0}))
    assert hits == () and total == 0.0


def test_gtube_is_a_named_hit_that_quarantines_even_when_the_model_says_ham() -> None:
    raw = PLAIN + b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n"
    hits, total = run(Mail(raw), fixed(0.0), HeuristicsPolicy())
    assert hits[0].symbol == "GTUBE" and hits[0].score == default_score("GTUBE")
    assert hits[-1].symbol == "HEURISTIC_SPAM" and hits[-1].action is Action.QUARANTINE
    assert total == default_score("GTUBE") - 10.0


def test_gtube_inside_base64_is_found_in_the_decoded_text() -> None:
    import base64

    body = base64.b64encode(heuristics.GTUBE)
    raw = b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + body + b"\n"
    hits, _ = run(Mail(raw), None, HeuristicsPolicy())
    assert "GTUBE" in [h.symbol for h in hits]


def test_policy_scores_override_the_registry_defaults() -> None:
    hits, total = run(Mail(NO_DATE), None, HeuristicsPolicy(), {"MISSING_DATE": 2.0})
    assert total == 2.0 and hits[0].score == 2.0
    domain = HeuristicsPolicy(rule_scores={"MISSING_DATE": 3.0})
    assert run(Mail(NO_DATE), None, domain, {"MISSING_DATE": 2.0})[1] == 3.0


@pytest.mark.parametrize(
    "header",
    [
        b"List-Unsubscribe: <mailto:leave@news.example>\n",
        b"Precedence: bulk\n",
        b"Feedback-ID: 1:x\n",
    ],
)
def test_bulk_mail_is_never_quarantined_on_content_alone(header: bytes) -> None:
    hits, _ = run(Mail(header + PLAIN), fixed(1.0), HeuristicsPolicy())
    assert [h.symbol for h in hits][-2:] == ["BULK_MAIL", "HEURISTIC_SPAM"]
    assert hits[-1].action is Action.TAG_HEADER


def test_a_bulk_cap_without_a_threshold_of_its_own_still_gives_a_verdict() -> None:
    """The example policy: tag_subject and quarantine thresholds, bulk capped at tag_header.

    The reason names the threshold reached; the cap's action has none (this raised
    KeyError, and the gateway retried the message as a filter failure).
    """
    policy = HeuristicsPolicy(thresholds={"tag_subject": 4.0, "quarantine": 6.5})  # type: ignore[dict-item]
    hits, _ = run(Mail(b"List-Id: <news.example>\n" + PLAIN), fixed(1.0), policy)
    assert hits[-1].action is Action.TAG_HEADER
    assert hits[-1].reason == "score 10.00 >= 6.5 (quarantine), tag_header as bulk mail"


def test_bulk_cap_is_a_policy_setting_and_gtube_passes_it() -> None:
    raw = b"List-Id: <news.example>\n" + PLAIN
    hits, _ = run(Mail(raw), fixed(1.0), HeuristicsPolicy(bulk_max_action="quarantine"))  # type: ignore[arg-type]
    assert hits[-1].action is Action.QUARANTINE and "BULK_MAIL" not in [h.symbol for h in hits]
    hits, _ = run(Mail(raw + GTUBE_LINE), fixed(0.0), HeuristicsPolicy())
    assert hits[-1].action is Action.QUARANTINE
