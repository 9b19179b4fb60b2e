"""Accuracy benchmark: train on half a labelled corpus, score the other half, beside bogofilter."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from filters import heuristics, metrics
from filters.mail import Mail
from filters.model import train
from filters.policy import HeuristicsPolicy
from filters.verdict import Action, total_score
from loadtest.corpus import CorpusItem, read_corpus, split

SEED = 20240601
FP_BUDGET_PERCENT = 0.1


def _report(
    labels: list[bool], scores: list[float], spam: list[bool], **extra: Any
) -> dict[str, Any]:
    result: dict[str, Any] = metrics.evaluate(labels, scores, spam).to_dict()
    result["best_at_fp_0.1%"] = metrics.best_at_fp(labels, scores, FP_BUDGET_PERCENT).to_dict()
    return result | extra


def run_mailmoat(
    train_set: list[CorpusItem], test_set: list[CorpusItem], corpus: str, seed: int = SEED
) -> dict[str, Any]:
    """Train the token model, then run the heuristics stage (rules + model) on the test half.

    Hyper-parameters are ``train``'s defaults and the thresholds are
    ``HeuristicsPolicy``'s: both were chosen by cross-validation on training
    halves only, so the test half is never used to tune anything.
    ``best_at_fp_0.1%`` is the one number that picks its threshold on the
    test half (the best any single threshold could do); ``threshold`` and
    ``at_quarantine_threshold`` are the honest, fixed operating points.
    """
    start = time.perf_counter()
    model = train(
        ((Mail.from_file_bytes(i.data), i.label == "spam") for i in train_set),
        seed=seed,
        corpus=corpus,
    )
    train_seconds = time.perf_counter() - start
    policy = HeuristicsPolicy()
    tag_at = min(policy.thresholds.values())
    labels, scores = [], []
    start = time.perf_counter()
    for item in test_set:
        total = total_score(heuristics.check(Mail.from_file_bytes(item.data), model, policy))
        labels.append(item.label == "spam")
        scores.append(total)
    seconds = time.perf_counter() - start
    top = policy.thresholds.get(Action.QUARANTINE, max(policy.thresholds.values()))
    at_top = metrics.evaluate(labels, scores, [s >= top for s in scores]).to_dict()
    return _report(
        labels,
        scores,
        [s >= tag_at for s in scores],
        threshold=tag_at,
        at_quarantine_threshold={"threshold": top} | at_top,
        thresholds={a.label: t for a, t in policy.thresholds.items()},
        train_seconds=round(train_seconds, 2),
        vocabulary=len(model.weights),
        scoring_msgs_per_second=round(len(test_set) / seconds, 1),
        scoring_note="Mail parse + rules + token model per message, one process",
    )


def _ensure_bogofilter() -> str | None:
    """The bogofilter binary, installing the Debian package if possible; None if unavailable."""
    found = shutil.which("bogofilter")
    if found or not shutil.which("apt-get"):
        return found
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "bogofilter"],
    ):
        if subprocess.run(command, capture_output=True, env=env, check=False).returncode != 0:
            return None
    return shutil.which("bogofilter")


def run_bogofilter(train_set: list[CorpusItem], test_set: list[CorpusItem]) -> dict[str, Any]:
    """bogofilter trained and scored on the same halves, one message per file (``-B``)."""
    binary = _ensure_bogofilter()
    if binary is None:
        return {"skipped": "bogofilter not installed and `apt-get install bogofilter` failed"}
    with tempfile.TemporaryDirectory(prefix="bogo-") as db:
        start = time.perf_counter()
        for label, flag in (("spam", "-s"), ("ham", "-n")):
            files = [str(i.path) for i in train_set if i.label == label]
            subprocess.run([binary, "-d", db, flag, "-B", *files], check=True, capture_output=True)
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        # -T prints "path H|S|U spamicity"; the exit status says only the last verdict.
        out = subprocess.run(
            [binary, "-d", db, "-T", "-B", *(str(i.path) for i in test_set)],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
    rows = [line.rsplit(None, 2) for line in out.stdout.splitlines()]
    if len(rows) != len(test_set):
        return {"skipped": f"bogofilter printed {len(rows)} lines for {len(test_set)} messages"}
    return _report(
        [i.label == "spam" for i in test_set],
        [float(r[2]) for r in rows],
        [r[1] == "S" for r in rows],
        threshold="bogofilter spam_cutoff (verdict S)",
        unsure=sum(r[1] == "U" for r in rows),
        train_seconds=round(train_seconds, 2),
        scoring_msgs_per_second=round(len(test_set) / seconds, 1),
        version=subprocess.run([binary, "-V"], capture_output=True, text=True).stdout.split("\n")[
            0
        ],
    )


def _table(results: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="Accuracy on the held-out half")
    table.add_column("metric")
    names = [n for n, r in results.items() if "skipped" not in r]
    for name in names:
        table.add_column(name, justify="right")
    keys = ["false_positives", "false_negatives", "hm_percent", "sm_percent", "roc_auc"]
    keys += ["one_minus_roca_percent", "train_seconds", "scoring_msgs_per_second"]
    for key in keys:
        table.add_row(key, *(f"{results[n][key]:.4g}" for n in names))
    table.add_row(
        "sm% at hm%<=0.1", *(f"{results[n]['best_at_fp_0.1%']['sm_percent']:.3g}" for n in names)
    )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True, help="corpus directory or index")
    parser.add_argument("--labels", type=Path, help="label file, relative to the corpus")
    parser.add_argument("--out", type=Path, default=Path("bench/results/accuracy.json"))
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the 50/50 split")
    parser.add_argument("--no-bogofilter", action="store_true", help="skip the bogofilter run")
    args = parser.parse_args()
    errors: list[Any] = []
    items = [i for i in read_corpus(args.corpus, args.labels, errors=errors) if i.label]
    train_set, test_set = split(items, 0.5, seed=args.seed)
    results = {"mailmoat": run_mailmoat(train_set, test_set, args.corpus.name, args.seed)}
    results["bogofilter"] = (
        {"skipped": "--no-bogofilter"}
        if args.no_bogofilter
        else run_bogofilter(train_set, test_set)
    )
    document = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "numpy": np.__version__,
        },
        "corpus": str(args.corpus),
        "messages": len(items),
        "read_errors": [str(e) for e in errors],
        "split": {"seed": args.seed, "train": len(train_set), "test": len(test_set)},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    Console().print(_table(results))
    for name, result in results.items():
        if "skipped" in result:
            Console().print(f"{name}: skipped ({result['skipped']})")
    Console().print(f"written to {args.out}")


if __name__ == "__main__":
    main()
