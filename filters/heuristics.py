"""The heuristics stage: rule scores plus the token model's, turned into an action by policy."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from filters.mail import Mail
from filters.model import TokenModel
from filters.policy import HeuristicsPolicy
from filters.rules import RULES
from filters.symbols import default_score
from filters.verdict import Action, Hit, Stage, total_score

MODEL_SYMBOL = "HEURISTIC_MODEL"
SPAM_SYMBOL = "HEURISTIC_SPAM"
GTUBE_SYMBOL = "GTUBE"
# The Generic Test for Unsolicited Bulk Email: what operators send first to see a filter act.
# Built from two halves so this file is not itself caught by a filter it passes through.
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*" + b"GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
_GTUBE_TEXT = GTUBE.decode()
_NONE: Mapping[str, float] = MappingProxyType({})
BULK_SYMBOL = "BULK_MAIL"
# Headers that mailing-list managers and email service providers add: mail that carries
# them is bulk by its sender's own account, wanted or not.
_BULK_HEADERS = (
    "List-Unsubscribe", "List-Id", "List-Post", "X-Mailgun-Sid", "X-SG-EID", "X-SES-Outgoing",
    "X-MC-User", "X-Campaign", "Feedback-ID", "X-CSA-Complaints",
)  # fmt: skip


def bulk(mail: Mail) -> str | None:
    """Which header marks the message as bulk (newsletter, list, ESP), or None."""
    for name in _BULK_HEADERS:
        if mail.header(name) is not None:
            return name
    precedence = (mail.header("Precedence") or "").strip().lower()
    return "Precedence: " + precedence if precedence in ("bulk", "list") else None


def gtube(mail: Mail, score: float) -> Hit | None:
    """A ``GTUBE`` hit when the test string is in the raw message or its decoded text."""
    if GTUBE in mail.raw or _GTUBE_TEXT in mail.text:
        return Hit(GTUBE_SYMBOL, Stage.HEURISTICS, "GTUBE test string in the body", score)
    return None


def check(
    mail: Mail,
    model: TokenModel | None,
    policy: HeuristicsPolicy,
    scores: Mapping[str, float] = _NONE,
    facts: tuple[Hit, ...] = (),
) -> tuple[Hit, ...]:
    """Rule hits, the model's contribution, and ``HEURISTIC_SPAM`` when a threshold is met.

    The stage's score is ``total_score`` of its hits. Without a model a rule
    adds its score: ``policy.rule_scores`` when set there, else ``scores``
    (the policy's ``[scores]``), else the registry's; a score of 0 switches
    the rule off. With a model the rules are model features (``rule:SYMBOL``)
    whose weights were learned with every other token, so a rule hit is still
    reported with its reason but adds only a score the domain's policy sets
    explicitly: adding the default as well would count the rule twice. The
    model adds ``model_weight * (2p - 1)``, so a sure ham subtracts as much as
    a sure spam adds. ``HEURISTIC_SPAM`` carries the action and no score of
    its own. ``GTUBE`` adds its own score whether or not there is a model.

    Bulk mail (list and ESP headers, ``Precedence: bulk``) is a class of its
    own: newsletters read like old spam to a token model, so on content alone
    (this stage) its action stops at ``policy.bulk_max_action`` and a
    ``BULK_MAIL`` hit says so; blacklists and signatures are not capped.
    """
    test = gtube(mail, scores.get(GTUBE_SYMBOL, default_score(GTUBE_SYMBOL)))
    hits: list[Hit] = [*facts] if test is None else [*facts, test]
    fired: list[str] = []
    for rule in RULES:
        if model is None:
            default = scores.get(rule.symbol, default_score(rule.symbol))
            score = policy.rule_scores.get(rule.symbol, default)
            if score == 0.0:
                continue
        reason = rule.check(mail)
        if reason is None:
            continue
        fired.append(rule.symbol)
        if model is not None:
            score = policy.rule_scores.get(rule.symbol, 0.0)
        if rule.symbol not in policy.rule_scores or score != 0.0:
            hits.append(Hit(rule.symbol, Stage.HEURISTICS, reason, score))
    if model is not None:
        p = model.spam_probability(mail, fired)
        score = policy.model_weight * (2.0 * p - 1.0)
        reason = f"token model: spam probability {p:.3f}"
        hits.append(Hit(MODEL_SYMBOL, Stage.HEURISTICS, reason, score))
    total = total_score(hits)
    action = reached = policy.action_for(total)
    marker = bulk(mail) if action > policy.bulk_max_action and test is None else None
    if marker is not None:
        cap = policy.bulk_max_action.label
        reason = f"bulk mail ({marker}): content alone goes no further than {cap}"
        hits.append(Hit(BULK_SYMBOL, Stage.HEURISTICS, reason))
        action = policy.bulk_max_action
    if action > Action.DELIVER:
        # The threshold reached: a bulk cap may name an action that has none of its own.
        reason = f"score {total:.2f} >= {policy.thresholds[reached]:g} ({reached.label})"
        if action is not reached:
            reason += f", {action.label} as bulk mail"
        hits.append(Hit(SPAM_SYMBOL, Stage.HEURISTICS, reason, 0.0, action))
    return tuple(hits)
