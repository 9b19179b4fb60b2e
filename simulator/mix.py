"""The distinct messages a month is drawn from, each judged once by the real pipeline.

Ten million simulated messages reuse a few hundred or thousand distinct ones
(a labelled corpus plus generated EICAR-style viruses), so ``evaluate`` runs
once per distinct message and every copy shares its verdict. The mean time
``evaluate`` took is the measured filter time the queueing model can use.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from filters.facts import NO_FACTS
from filters.mail import Mail
from filters.pipeline import evaluate
from filters.policy import load_policy
from filters.runtime import Policy
from filters.training import train
from filters.verdict import Action, Verdict
from loadtest.corpus import CorpusError, CorpusFormatError, read_corpus, split
from loadtest.generate import EICAR, generate
from simulator.errors import ScenarioError
from simulator.scenario import Traffic

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY = ROOT / "examples" / "policy.toml"
VIRUSES = 8
HAM, SPAM, VIRUS = 0, 1, 2
"""True labels, as codes in the per-message arrays."""
LABELS = ("ham", "spam", "virus")
DELIVERED, REDIRECTED, QUARANTINED, DELETED, EXPIRED = range(5)
"""Outcome codes; ``OUTCOMES`` spells them as the events table does."""
OUTCOMES = ("delivered", "redirected", "quarantined", "deleted", "expired")


@dataclass(frozen=True, slots=True)
class Mix:
    """Distinct messages by label, their verdicts, and the event columns each verdict gives."""

    label: NDArray[np.int8]
    action: NDArray[np.int8]
    outcome: NDArray[np.int8]
    full_action: NDArray[np.int8]
    full_outcome: NDArray[np.int8]
    category: list[str]
    score: list[float]
    symbols: list[str]
    hits: list[str]
    size: list[int]
    filter_seconds: float
    skipped: list[str]
    """Corpus files that could not be read, each with why (the month goes on without them)."""

    def of(self, label: int) -> NDArray[np.int64]:
        """Indices of the distinct messages with this true label."""
        return np.flatnonzero(self.label == label)


def _virus(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"invoice{n}@infected-sender.example"
    msg["To"] = "user@example.test"
    msg["Subject"] = f"Your invoice {1000 + n}"
    msg["Message-ID"] = f"<virus-{n}@infected-sender.example>"
    msg.set_content("Please see the attached invoice.\n")
    msg.add_attachment(EICAR, maintype="application", subtype="octet-stream",
                       filename=f"invoice-{n}.com")  # fmt: skip
    msg.set_boundary(f"mm-virus-{n:04d}")
    return msg.as_bytes()


def _corpus(
    traffic: Traffic, seed: int, scratch: Path, base: Path
) -> tuple[list[tuple[str, bytes, int]], list[str]]:
    """(name, bytes, label) of each labelled message, and the files that could not be read."""
    if traffic.corpus == "generated":
        where = scratch / f"corpus-{seed}-{traffic.corpus_size}"
        if not (where / "labels.tsv").exists():
            generate(where, traffic.corpus_size, seed=seed, viruses=0)
    else:
        where = (base / traffic.corpus).resolve()
    skipped: list[CorpusError] = []
    try:
        items = [
            (i.name, i.data, HAM if i.label == "ham" else SPAM)
            for i in read_corpus(where, on_error=skipped.append)
            if i.label is not None
        ]
    except CorpusFormatError as exc:
        raise ScenarioError(f"traffic.corpus: {exc}") from None
    labels = {label for *_, label in items}
    if not {HAM, SPAM} <= labels:
        raise ScenarioError(f"traffic.corpus: {where} needs labelled ham and spam")
    return items, [str(e) for e in skipped]


def _policy(traffic: Traffic, base: Path, items: list[tuple[str, bytes, int]]) -> Policy:
    path = (base / traffic.policy).resolve() if traffic.policy else DEFAULT_POLICY
    config = load_policy(path).model_copy(update={"model": None})
    policy = Policy.from_config(config)
    if traffic.model == "none":
        return policy
    if traffic.model == "train":
        # Half the corpus, so the other half meets the model unseen and errors can happen.
        half, _ = split(items, seed=1)
        samples = [(Mail.from_file_bytes(data), label == SPAM) for _, data, label in half]
        return dataclasses.replace(policy, model=train(samples, seed=1))
    return Policy.from_config(config, model=(base / traffic.model).resolve())


def _hits(verdict: Verdict) -> str:
    """The hits as the gateway stores them: each hit's fields, stage and action by name."""
    hits = [
        {**dataclasses.asdict(h), "stage": str(h.stage), "action": h.action.label}
        for h in verdict.hits
    ]
    return json.dumps(hits)


def outcome(verdict: Verdict, quarantine_ok: bool) -> tuple[Action, int]:
    """The action taken and its outcome code, as ``service.actions.decide`` maps them.

    A quarantine that cannot take the message tags it and delivers it instead (SPEC 3),
    except a virus: the gateway keeps it spooled until the quarantine has room, so it ends
    quarantined all the same.
    """
    action = verdict.action
    if action is Action.QUARANTINE and not quarantine_ok and not verdict.is_virus:
        return Action.TAG_SUBJECT, DELIVERED
    if action <= Action.TAG_SUBJECT:
        return action, DELIVERED
    if action is Action.REDIRECT and verdict.redirect_to:
        return action, REDIRECTED
    return action, QUARANTINED if action is Action.QUARANTINE else DELETED


def build_mix(traffic: Traffic, seed: int, scratch: Path, base: Path) -> Mix:
    """Read the corpus, add the viruses, and judge every distinct message once."""
    items, skipped = _corpus(traffic, seed, scratch, base)
    try:
        policy = _policy(traffic, base, items)
    except (OSError, ValueError) as exc:  # PolicyError and ModelError are ValueErrors
        raise ScenarioError(f"traffic.policy / traffic.model: {exc}") from None
    items += [(f"virus-{n}", _virus(n), VIRUS) for n in range(VIRUSES)]
    normal: list[tuple[Action, int]] = []
    full: list[tuple[Action, int]] = []
    category, score, symbols, hits = [], [], [], []
    spent = 0.0
    for _, data, _ in items:
        started = time.perf_counter()
        verdict = evaluate(Mail.from_file_bytes(data), NO_FACTS, policy)
        spent += time.perf_counter() - started
        normal.append(outcome(verdict, quarantine_ok=True))
        full.append(outcome(verdict, quarantine_ok=False))
        category.append(str(verdict.category))
        score.append(verdict.score)
        symbols.append(json.dumps(list(verdict.symbols)))
        hits.append(_hits(verdict))
    return Mix(
        label=np.array([label for *_, label in items], dtype=np.int8),
        action=np.array([a for a, _ in normal], dtype=np.int8),
        outcome=np.array([o for _, o in normal], dtype=np.int8),
        full_action=np.array([a for a, _ in full], dtype=np.int8),
        full_outcome=np.array([o for _, o in full], dtype=np.int8),
        category=category,
        score=score,
        symbols=symbols,
        hits=hits,
        size=[len(data) for _, data, _ in items],
        filter_seconds=spent / len(items),
        skipped=skipped,
    )
