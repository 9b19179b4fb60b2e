"""Run the pure pipeline over a labelled corpus and measure accuracy and speed.

No network: the facts are empty, so block lists do not take part (they are
I/O, measured by the replay bench against a running gateway). "Judged spam"
means the spam stages chose an action (tag or worse) or a virus was found;
content-control outcomes are the customer's policy, not a spam judgement.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from filters import metrics
from filters.facts import NO_FACTS
from filters.mail import Mail
from filters.pipeline import evaluate
from filters.runtime import Policy
from filters.verdict import Category
from loadtest.corpus import CorpusItem

_JUDGED_SPAM = (Category.SPAM, Category.VIRUS)


@dataclass
class EvaluationRun:
    """Per-message outcomes of one corpus run, and what they add up to."""

    labels: list[bool] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    judged: list[bool] = field(default_factory=list)
    actions: Counter[str] = field(default_factory=Counter)
    symbols: Counter[str] = field(default_factory=Counter)
    unlabelled: int = 0
    seconds: float = 0.0

    @property
    def messages(self) -> int:
        return len(self.labels) + self.unlabelled

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def accuracy(self) -> metrics.Evaluation | None:
        if not self.labels or all(self.labels) or not any(self.labels):
            return None
        return metrics.evaluate(self.labels, self.scores, self.judged)

    def to_dict(self) -> dict[str, Any]:
        found = self.accuracy()
        return {
            "messages": self.messages,
            "unlabelled": self.unlabelled,
            "seconds": round(self.seconds, 3),
            "messages_per_second": round(self.per_second, 1),
            "accuracy": found.to_dict() if found else None,
            "actions": dict(self.actions),
            "symbols": dict(self.symbols.most_common()),
        }

    def summary_rows(self) -> list[tuple[str, str]]:
        rows = [("messages", str(self.messages)), ("messages/s", f"{self.per_second:,.0f}")]
        found = self.accuracy()
        if found is not None:
            rows += [
                ("ham / spam", f"{found.ham} / {found.spam}"),
                (
                    "false positives (ham judged spam)",
                    f"{found.false_positives} ({found.hm_percent:.3f}% hm)",
                ),
                (
                    "false negatives (spam missed)",
                    f"{found.false_negatives} ({found.sm_percent:.3f}% sm)",
                ),
                ("ROC AUC", f"{found.roc_auc:.5f}"),
                ("1-ROCA%", f"{found.one_minus_roca_percent:.4f}"),
            ]
        rows += [(f"action {a}", str(n)) for a, n in sorted(self.actions.items())]
        return rows


def evaluate_corpus(items: Iterable[CorpusItem], policy: Policy) -> EvaluationRun:
    """Filter every item; only parsing and deciding are timed, not reading files."""
    run = EvaluationRun()
    for item in items:
        start = time.perf_counter()
        verdict = evaluate(Mail.from_file_bytes(item.data), NO_FACTS, policy)
        run.seconds += time.perf_counter() - start
        run.actions[verdict.action.label] += 1
        run.symbols.update(verdict.symbols)
        if item.label is None:
            run.unlabelled += 1
            continue
        run.labels.append(item.label == "spam")
        run.scores.append(verdict.score)
        run.judged.append(verdict.category in _JUDGED_SPAM)
    return run
