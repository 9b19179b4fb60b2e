"""Spam-filter evaluation metrics as in the TREC spam track: pure functions over numpy arrays.

Labels are True for spam; scores grow with spamminess; decisions are True
where the filter judged a message spam. A false positive is ham judged spam.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Confusion counts and the rates derived from them; rates are percentages."""

    ham: int
    spam: int
    false_positives: int
    false_negatives: int
    hm_percent: float
    sm_percent: float
    roc_auc: float
    one_minus_roca_percent: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """The best threshold under a false-positive budget: judge spam when score >= threshold."""

    threshold: float
    hm_percent: float
    sm_percent: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _arrays(
    labels: Sequence[bool] | BoolArray, scores: Sequence[float] | FloatArray
) -> tuple[BoolArray, FloatArray]:
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels and scores must be 1-d and equally long: {y.shape} vs {s.shape}")
    return y, s


def roc_auc(labels: Sequence[bool] | BoolArray, scores: Sequence[float] | FloatArray) -> float:
    """Probability that a random spam scores above a random ham; a tie counts one half.

    Computed from average ranks (Mann-Whitney U), so ties are handled exactly.
    NaN when either class is absent.
    """
    y, s = _arrays(labels, scores)
    n_spam, n_ham = int(y.sum()), int((~y).sum())
    if n_spam == 0 or n_ham == 0:
        return float("nan")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    # Tied scores share the mean of the ranks they occupy.
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    u = ranks[y].sum() - n_spam * (n_spam + 1) / 2.0
    return float(u / (n_spam * n_ham))


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else float("nan")


def evaluate(
    labels: Sequence[bool] | BoolArray,
    scores: Sequence[float] | FloatArray,
    decisions: Sequence[bool] | BoolArray,
) -> Evaluation:
    """Counts, hm% (ham misclassified), sm% (spam missed), ROC AUC and 1-ROCA%."""
    y, s = _arrays(labels, scores)
    d = np.asarray(decisions, dtype=bool)
    if d.shape != y.shape:
        raise ValueError(f"decisions must match labels: {d.shape} vs {y.shape}")
    n_spam, n_ham = int(y.sum()), int((~y).sum())
    fp, fn = int((d & ~y).sum()), int((~d & y).sum())
    auc = roc_auc(y, s)
    return Evaluation(
        ham=n_ham,
        spam=n_spam,
        false_positives=fp,
        false_negatives=fn,
        hm_percent=_percent(fp, n_ham),
        sm_percent=_percent(fn, n_spam),
        roc_auc=auc,
        one_minus_roca_percent=(1.0 - auc) * 100.0,
    )


def best_at_fp(
    labels: Sequence[bool] | BoolArray,
    scores: Sequence[float] | FloatArray,
    max_fp_percent: float,
) -> OperatingPoint:
    """The lowest sm% over thresholds whose hm% is at most ``max_fp_percent``."""
    y, s = _arrays(labels, scores)
    ham = np.sort(s[~y])[::-1]
    spam = s[y]
    if len(ham) == 0 or len(spam) == 0:
        raise ValueError("best_at_fp needs both ham and spam")
    allowed = int(np.floor(max_fp_percent / 100.0 * len(ham) + 1e-9))
    # Judging spam at "score > the (allowed+1)-th highest ham" lets exactly `allowed` ham through.
    threshold = float(np.nextafter(ham[allowed], np.inf)) if allowed < len(ham) else float(s.min())
    fp = int((ham >= threshold).sum())
    fn = int((spam < threshold).sum())
    return OperatingPoint(threshold, _percent(fp, len(ham)), _percent(fn, len(spam)))
