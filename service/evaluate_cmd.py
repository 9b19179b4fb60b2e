"""``mailmoat evaluate``: accuracy of the pipeline on a corpus, three ways.

Plain: the pure pipeline with the given policy and model over every message.
``--seeds``: for each seed, train on a random half and evaluate the other
half, one table row per seed. ``--online``: the TREC immediate-feedback
protocol (score each message, then learn its label) in corpus order or a
seeded shuffle; no model is needed. Every mode reports the spam missed at
fixed shares of ham flagged (0.1% and 0.01%) beside 1-ROCA%, and
``--scores FILE`` writes one line per message: name, label, score, judged.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from filters import metrics
from filters.learning import online_scores
from filters.mail import Mail
from filters.policy import PolicyConfig
from filters.runtime import Policy
from filters.training import train
from loadtest.corpus import CorpusError, CorpusItem, read_corpus, split
from loadtest.evaluation import evaluate_corpus

FP_RATES = (0.1, 0.01)
console = Console()
errors = Console(stderr=True)


def _skip(error: CorpusError) -> None:
    errors.print(f"[yellow]skipped[/] {error}")


def _policy(args: argparse.Namespace) -> Policy:
    if args.policy is None:
        return Policy.from_config(PolicyConfig(), model=args.model)
    return Policy.load(args.policy, model=args.model)


def at_fixed_fp(labels: list[bool], scores: list[float]) -> dict[str, dict[str, float]]:
    """Spam missed (sm%) at the best threshold flagging at most each share of ham."""
    if not labels or all(labels) or not any(labels):
        return {}
    found = {f"{r}%": metrics.best_at_fp(labels, scores, r).to_dict() for r in FP_RATES}
    return found | {
        "one_minus_roca_percent": {"value": (1 - metrics.roc_auc(labels, scores)) * 100}
    }


def _write_scores(path: Path, rows: list[tuple[str, bool, float, bool]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.write("message\tlabel\tscore\tjudged\n")
        for name, spam, score, judged in rows:
            label, verdict = ("spam" if spam else "ham"), ("spam" if judged else "ham")
            out.write(f"{name}\t{label}\t{score:.6g}\t{verdict}\n")


def _pipeline(items: list[CorpusItem], policy: Policy) -> tuple[dict[str, Any], list[Any]]:
    """The pipeline over ``items``; the report and one (name, label, score, judged) per message."""
    labelled = [i for i in items if i.label is not None]
    run = evaluate_corpus(iter(items), policy)
    rows = [
        (item.name, spam, score, judged)
        for item, spam, score, judged in zip(
            labelled, run.labels, run.scores, run.judged, strict=True
        )
    ]
    report = run.to_dict() | {"at_fixed_fp": at_fixed_fp(run.labels, run.scores)}
    report["summary_rows"] = run.summary_rows()
    return report, rows


def _print(title: str, rows: list[tuple[str, str]]) -> None:
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def _fp_rows(found: dict[str, dict[str, float]]) -> list[tuple[str, str]]:
    rows = [
        (f"sm% at hm <= {r}%", f"{found[f'{r}%']['sm_percent']:.3f}")
        for r in FP_RATES
        if f"{r}%" in found
    ]
    if "one_minus_roca_percent" in found:
        rows.append(("1-ROCA%", f"{found['one_minus_roca_percent']['value']:.4f}"))
    return rows


def _online(items: list[CorpusItem], seed: int | None) -> tuple[dict[str, Any], list[Any]]:
    labelled = [i for i in items if i.label is not None]
    if seed is not None:
        random.Random(seed).shuffle(labelled)
    samples: Iterator[tuple[Mail, bool]] = (
        (Mail.from_file_bytes(i.data), i.label == "spam") for i in labelled
    )
    scores = online_scores(samples)
    labels = [i.label == "spam" for i in labelled]
    rows = [(i.name, y, s, s > 0) for i, y, s in zip(labelled, labels, scores, strict=True)]
    report = {"protocol": "TREC immediate feedback", "order_seed": seed, "messages": len(labels)}
    return report | {"at_fixed_fp": at_fixed_fp(labels, scores)}, rows


def _seeds(items: list[CorpusItem], policy: Policy, seeds: list[int]) -> dict[str, Any]:
    """Train on half, evaluate the other half, once per seed: one table row each."""
    labelled = [i for i in items if i.label is not None]
    table = Table(title="per seed: train on half, evaluate the other half")
    for column in (
        "seed",
        "FP",
        "FN",
        "hm%",
        "sm%",
        "sm% @ hm<=0.1%",
        "sm% @ hm<=0.01%",
        "1-ROCA%",
    ):
        table.add_column(column, justify="right")
    per_seed = {}
    for seed in seeds:
        train_set, test_set = split(labelled, 0.5, seed=seed)
        model = train(
            ((Mail.from_file_bytes(i.data), i.label == "spam") for i in train_set), seed=seed
        )
        report, _ = _pipeline(test_set, policy.with_model(model))
        del report["summary_rows"]
        per_seed[str(seed)] = report
        acc, fixed = report["accuracy"], report["at_fixed_fp"]
        table.add_row(
            str(seed), str(acc["false_positives"]), str(acc["false_negatives"]),
            f"{acc['hm_percent']:.3f}", f"{acc['sm_percent']:.3f}",
            f"{fixed['0.1%']['sm_percent']:.3f}", f"{fixed['0.01%']['sm_percent']:.3f}",
            f"{fixed['one_minus_roca_percent']['value']:.4f}",
        )  # fmt: skip
    console.print(table)
    return {"per_seed": per_seed}


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run the evaluation the flags ask for; print tables; write JSON and scores on request."""
    if args.scores is not None and args.seeds:
        raise ValueError("--scores needs a single run, not --seeds")
    items = list(read_corpus(args.corpus, args.labels, on_error=_skip))
    rows: list[Any] = []
    if args.online:
        report, rows = _online(items, args.order_seed)
        _print(f"evaluate --online {args.corpus}", _fp_rows(report["at_fixed_fp"]))
    elif args.seeds:
        report = _seeds(items, _policy(args), args.seeds)
    else:
        report, rows = _pipeline(items, _policy(args))
        summary = report.pop("summary_rows")
        _print(f"evaluate {args.corpus}", summary + _fp_rows(report["at_fixed_fp"]))
    if args.scores is not None:
        _write_scores(args.scores, rows)
        console.print(f"scores written to {args.scores}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"report written to {args.json}")
    return 0


def add_evaluate(sub: Any, corpus_args: Any, policy_args: Any) -> None:
    """Register ``evaluate`` on the CLI's sub-parsers."""
    p = sub.add_parser("evaluate", help="run the pipeline over a labelled corpus")
    corpus_args(p)
    policy_args(p)
    p.add_argument("--json", type=Path, help="also write the report as JSON here")
    p.add_argument("--scores", type=Path, help="write name, label, score, judged per message")
    p.add_argument("--online", action="store_true", help="TREC immediate feedback (no model)")
    p.add_argument("--order-seed", type=int, help="with --online: shuffle the corpus by this seed")
    p.add_argument("--seeds", type=int, nargs="+", help="train on half, evaluate half, per seed")
    p.set_defaults(func=cmd_evaluate)
