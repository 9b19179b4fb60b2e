"""Evaluation metrics on examples small enough to check by hand."""

from __future__ import annotations

import math

import pytest

from filters.metrics import best_at_fp, evaluate, roc_auc


@pytest.mark.parametrize(
    ("labels", "scores", "auc"),
    [
        ([False, False, True, True], [0.1, 0.2, 0.8, 0.9], 1.0),
        ([False, False, True, True], [0.9, 0.8, 0.2, 0.1], 0.0),
        ([False, True], [0.5, 0.5], 0.5),
        # pairs (ham, spam): (0.1,0.5)=1 (0.1,0.9)=1 (0.5,0.5)=.5 (0.5,0.9)=1 -> 3.5/4
        ([False, False, True, True], [0.1, 0.5, 0.5, 0.9], 0.875),
    ],
)
def test_roc_auc_counts_ties_as_half(labels: list[bool], scores: list[float], auc: float) -> None:
    assert roc_auc(labels, scores) == pytest.approx(auc)


def test_roc_auc_is_nan_for_one_class() -> None:
    assert math.isnan(roc_auc([True, True], [0.1, 0.2]))


def test_evaluate_counts_and_rates() -> None:
    labels = [False] * 4 + [True] * 5
    scores = [0.0, 0.1, 0.2, 0.9, 0.3, 0.8, 0.8, 0.9, 1.0]
    result = evaluate(labels, scores, [s >= 0.5 for s in scores])
    assert (result.ham, result.spam) == (4, 5)
    assert (result.false_positives, result.false_negatives) == (1, 1)
    assert result.hm_percent == 25.0 and result.sm_percent == 20.0
    # 16 of 20 (ham, spam) pairs ordered right, one tie at 0.9 counts half.
    assert result.roc_auc == pytest.approx(0.825)
    assert result.one_minus_roca_percent == pytest.approx(17.5)
    assert result.to_dict()["false_positives"] == 1


def test_evaluate_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="equally long"):
        evaluate([True], [0.1, 0.2], [True])


def test_best_at_fp_finds_the_threshold_under_the_budget() -> None:
    labels = [False] * 10 + [True] * 4
    scores = [0.0] * 8 + [0.6, 0.95] + [0.5, 0.7, 0.9, 0.99]
    strict = best_at_fp(labels, scores, 0.0)
    assert strict.hm_percent == 0.0 and strict.sm_percent == 75.0 and strict.threshold > 0.95
    loose = best_at_fp(labels, scores, 10.0)
    assert loose.hm_percent == 10.0 and loose.sm_percent == 25.0
    assert loose.to_dict()["threshold"] == loose.threshold
