"""Online learning: TREC immediate feedback learns as it goes; ``update`` is pure and bounded."""

from __future__ import annotations

from filters.learning import OnlineLearner, online_scores, update
from filters.metrics import roc_auc
from filters.model import tokens
from filters.training import train
from tests.filters.test_model import HAM_WORDS, SPAM_WORDS, message, synthetic


def test_immediate_feedback_scores_each_message_before_learning_it() -> None:
    samples = synthetic(200, seed=5)
    scores = online_scores(samples)
    assert scores[0] == 0.0  # nothing learned yet
    later = slice(100, None)
    labels = [spam for _, spam in samples[later]]
    assert roc_auc(labels, scores[later]) > 0.99


def test_learner_weights_stay_within_the_cap() -> None:
    learner = OnlineLearner(rate=5.0, cap=1.0)
    online_scores(synthetic(60), learner)
    assert learner.weights and max(abs(w) for w in learner.weights.values()) <= 1.0


def test_update_returns_a_new_model_and_leaves_the_old_one() -> None:
    model = train(synthetic(60), epochs=100)
    # A ham message in spam words: the release of a false positive.
    released = message(SPAM_WORDS[:6], "friend@home.example")
    before = dict(model.weights)
    learned = update(model, released, False, rate=0.05)
    assert model.weights == before
    assert learned.logit(released) < model.logit(released)
    moved = {t: learned.weights[t] - before.get(t, 0.0) for t in tokens(released)}
    assert all(-0.05 <= d <= 0.0 for d in moved.values()) and any(moved.values())
    assert learned.metadata["updates"] == "1"


def test_update_respects_the_weight_cap() -> None:
    model = train(synthetic(60), epochs=100)
    spam = message(HAM_WORDS[:6], "x@y.example")
    for _ in range(200):
        model = update(model, spam, True, rate=0.5, cap=2.0)
    assert max(model.weights[t] for t in tokens(spam)) <= 2.0


def test_update_moves_any_messages_regression_logit_by_at_most_rate() -> None:
    model = train(synthetic(60), epochs=100, evidence_weight=0.0)
    released = message(SPAM_WORDS[:6], "friend@home.example")
    others = [mail for mail, _ in synthetic(40, seed=9)] + [released]
    learned = update(model, released, False, rate=0.5)
    moves = [model.logit(m) - learned.logit(m) for m in others]
    assert all(0.0 <= d <= 0.5 + 1e-9 for d in moves)
    assert moves[-1] > 0.4  # the released message itself moves nearly the whole step


def test_update_counts_the_message_in_the_fisher_evidence() -> None:
    model = train(synthetic(60), epochs=100)
    released = message(SPAM_WORDS[:6], "friend@home.example")
    learned = update(model, released, False)
    moved = [t for t in tokens(released) if t in model.evidence]
    assert moved
    for token in moved:
        n = model.evidence_df[token]
        before, after = model.evidence[token], learned.evidence.get(token, 0.5)
        assert after < before  # toward ham
        assert before - after <= 1.0 / (n + 1) + 1e-9 or token not in learned.evidence
        if token in learned.evidence:
            assert learned.evidence_df[token] == n + 1
    assert model.evidence == train(synthetic(60), epochs=100).evidence  # the old one is untouched
