"""The heuristics stage: rule scores plus the token model's, turned into an action by policy."""

from __future__ import annotations

from filters.mail import Mail
from filters.model import TokenModel
from filters.policy import HeuristicsPolicy
from filters.rules import RULES
from filters.verdict import Action, Hit, Stage

MODEL_SYMBOL = "HEURISTIC_MODEL"
SPAM_SYMBOL = "HEURISTIC_SPAM"


def check(
    mail: Mail, model: TokenModel | None, policy: HeuristicsPolicy
) -> tuple[tuple[Hit, ...], float]:
    """Rule hits, the model's contribution, and ``HEURISTIC_SPAM`` when a threshold is met.

    A rule's score comes from ``policy.rule_scores`` when set there; a score of
    0 there switches the rule off. The model adds ``model_weight * (2p - 1)``,
    so a sure ham subtracts as much as a sure spam adds. ``HEURISTIC_SPAM``
    carries the action and no score of its own (the total is already the sum).
    """
    hits: list[Hit] = []
    total = 0.0
    for rule in RULES:
        score = policy.rule_scores.get(rule.symbol, rule.score)
        if score == 0.0:
            continue
        reason = rule.check(mail)
        if reason is not None:
            hits.append(Hit(rule.symbol, Stage.HEURISTICS, reason, score))
            total += score
    if model is not None:
        p = model.spam_probability(mail)
        score = policy.model_weight * (2.0 * p - 1.0)
        hits.append(
            Hit(MODEL_SYMBOL, Stage.HEURISTICS, f"token model: spam probability {p:.3f}", score)
        )
        total += score
    action = policy.action_for(total)
    if action > Action.DELIVER:
        reason = f"score {total:.2f} >= {policy.thresholds[action]:g} ({action.label})"
        hits.append(Hit(SPAM_SYMBOL, Stage.HEURISTICS, reason, 0.0, action))
    return tuple(hits), total
