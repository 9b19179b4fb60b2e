"""Accuracy benchmark: Mailmoat beside bogofilter on the same data, four ways.

1. Dev split over five seeds (train on half of ``--corpus``, test on the other
   half): misses at <= 0.1% and <= 0.01% of ham flagged, 1-ROCA%, and the
   misses at the default thresholds; mean and worst seed.
2. Cross-corpus (``--cross``): train on all of ``--corpus``, test on another
   corpus from another source and era. Ham flagged and spam caught at the
   default thresholds (the operator's first day), plus the best any
   threshold could do. Nothing is ever trained on the cross corpus.
3. Phishing (``--phishing``): share of an all-spam corpus caught at the default
   thresholds by the model of 2.
4. Online (TREC immediate feedback, seeded order): 1-ROCA%.

Hyper-parameters are ``train``'s defaults and the thresholds are
``HeuristicsPolicy``'s: both were chosen on SpamAssassin training halves, so no
test set tunes anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from filters import heuristics, metrics
from filters.learning import online_scores
from filters.mail import Mail
from filters.model import TokenModel
from filters.policy import HeuristicsPolicy
from filters.training import train
from filters.verdict import Action, total_score
from loadtest.corpus import CorpusItem, read_corpus, split

SEEDS = (1, 2, 42, 20240601, 7)
FP_RATES = (0.1, 0.01)
ROOT = Path(__file__).resolve().parent.parent


def _labelled(path: Path) -> list[CorpusItem]:
    return [i for i in read_corpus(path) if i.label]


def _mail(item: CorpusItem) -> Mail:
    return Mail.from_file_bytes(item.data)


def _fit(items: list[CorpusItem], seed: int) -> TokenModel:
    return train(((_mail(i), i.label == "spam") for i in items), seed=seed)


def _report(labels: list[bool], scores: list[float], flagged: list[bool]) -> dict[str, Any]:
    """Counts at the operating point, misses at fixed ham rates, and 1-ROCA% when both exist."""
    if all(labels):
        caught = sum(flagged)
        return {"spam": len(labels), "caught": caught, "caught_percent": 100 * caught / len(labels)}
    result: dict[str, Any] = metrics.evaluate(labels, scores, flagged).to_dict()
    for rate in FP_RATES:
        result[f"at_fp_{rate}%"] = metrics.best_at_fp(labels, scores, rate).to_dict()
    return result


def score_mailmoat(model: TokenModel, items: list[CorpusItem]) -> dict[str, Any]:
    """The heuristics stage (rules + model) on ``items`` at the default thresholds."""
    policy = HeuristicsPolicy()
    tag_at = min(policy.thresholds.values())
    start = time.perf_counter()
    found = [heuristics.check(_mail(i), model, policy) for i in items]
    seconds = time.perf_counter() - start
    scores = [total_score(hits) for hits in found]
    held = [max((h.action for h in hits), default=Action.DELIVER) >= Action.QUARANTINE
            for hits in found]  # fmt: skip
    labels = [i.label == "spam" for i in items]
    result = _report(labels, scores, [s >= tag_at for s in scores])
    # Quarantined: the action, after the bulk-mail cap (tagged bulk mail is not held).
    result["quarantined"] = _report(labels, scores, held)
    result["bulk_capped"] = sum(any(h.symbol == heuristics.BULK_SYMBOL for h in hits)
                                for hits in found)  # fmt: skip
    result["thresholds"] = {a.label: t for a, t in policy.thresholds.items()}
    result["scoring_msgs_per_second"] = round(len(items) / seconds, 1)
    return result


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


def run_bogofilter(
    binary: str, train_set: list[CorpusItem], tests: dict[str, list[CorpusItem]]
) -> dict[str, Any]:
    """bogofilter trained once, then scored on each test set (one message per file, ``-B``).

    "Flagged" is bogofilter's own spam verdict (S, its spam_cutoff); unsure (U)
    is not flagged.
    """
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bogo-") as db:
        for label, flag in (("spam", "-s"), ("ham", "-n")):
            files = [str(i.path) for i in train_set if i.label == label]
            subprocess.run([binary, "-d", db, flag, "-B", *files], check=True, capture_output=True)
        for name, items in tests.items():
            # -T prints "path H|S|U spamicity"; the exit status says only the last verdict.
            printed = subprocess.run(
                [binary, "-d", db, "-T", "-B", *(str(i.path) for i in items)],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.splitlines()
            rows = [line.rsplit(None, 2) for line in printed]
            if len(rows) != len(items):
                out[name] = {"skipped": f"bogofilter printed {len(rows)} lines for {len(items)}"}
                continue
            labels = [i.label == "spam" for i in items]
            result = _report(labels, [float(r[2]) for r in rows], [r[1] == "S" for r in rows])
            out[name] = result | {"unsure": sum(r[1] == "U" for r in rows)}
    return out


def training_cost(corpus: Path) -> dict[str, Any]:
    """Peak RSS and seconds of ``mailmoat train`` on the whole corpus, in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "mailmoat"), "train", "--corpus", str(corpus),
             "--out", f"{tmp}/m.npz"],
            check=True, capture_output=True, cwd=ROOT,
        )  # fmt: skip
        seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_kib / 1024, 1)}


def online(items: list[CorpusItem], seed: int) -> dict[str, Any]:
    """TREC immediate feedback in a seeded order: score each message, then learn its label."""
    order = list(items)
    random.Random(seed).shuffle(order)
    labels = [i.label == "spam" for i in order]
    start = time.perf_counter()
    scores = online_scores((_mail(i), spam) for i, spam in zip(order, labels, strict=True))
    seconds = time.perf_counter() - start
    auc = metrics.roc_auc(labels, scores)
    return {
        "order_seed": seed,
        "messages": len(order),
        "one_minus_roca_percent": (1 - auc) * 100,
        "seconds": round(seconds, 1),
    }


def _summary(per_seed: list[dict[str, Any]], name: str) -> dict[str, Any]:
    runs = [r[name] for r in per_seed if "skipped" not in r[name]]
    if not runs:
        return {"skipped": True}
    out: dict[str, Any] = {}
    for rate in FP_RATES:
        misses = [r[f"at_fp_{rate}%"]["sm_percent"] for r in runs]
        out[f"sm%_at_fp_{rate}%"] = {"mean": mean(misses), "worst": max(misses)}
    roca = [r["one_minus_roca_percent"] for r in runs]
    out["one_minus_roca_percent"] = {"mean": mean(roca), "worst": max(roca)}
    return out


def _table(document: dict[str, Any]) -> Table:
    table = Table(title="Mailmoat vs bogofilter")
    for column in ("measure", "mailmoat", "bogofilter"):
        table.add_column(column, justify="left" if column == "measure" else "right")

    def cell(result: dict[str, Any], *path: str) -> str:
        value: Any = result
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return "-"
            value = value[key]
        return f"{value:.4g}"

    for seed_run in document["dev_split"]["per_seed"]:
        for key in ("at_fp_0.1%", "at_fp_0.01%"):
            label = f"seed {seed_run['seed']}: sm% at hm<={key[6:-1]}%"
            table.add_row(label, *(cell(seed_run[n], key, "sm_percent") for n in _NAMES))
        label = f"seed {seed_run['seed']}: 1-ROCA%"
        table.add_row(label, *(cell(seed_run[n], "one_minus_roca_percent") for n in _NAMES))
    summary = document["dev_split"]["summary"]
    for key in ("sm%_at_fp_0.1%", "one_minus_roca_percent"):
        for stat in ("mean", "worst"):
            table.add_row(f"{stat} {key}", *(cell(summary[n], key, stat) for n in _NAMES))
    for set_name in ("cross", "phishing"):
        found = document.get(set_name) or {}
        for key in ("hm_percent", "sm_percent", "caught_percent"):
            row = [cell(found.get(n, {}), key) for n in _NAMES]
            if row != ["-", "-"]:
                table.add_row(f"{set_name}: {key} at defaults", *row)
    return table


_NAMES = ("mailmoat", "bogofilter")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True, help="training/dev corpus")
    parser.add_argument("--cross", type=Path, help="cross-corpus test set (never trained on)")
    parser.add_argument("--phishing", type=Path, help="all-spam phishing corpus")
    parser.add_argument("--out", type=Path, default=Path("bench/results/accuracy.json"))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="split seeds")
    parser.add_argument("--no-bogofilter", action="store_true", help="skip the bogofilter runs")
    args = parser.parse_args()
    items = _labelled(args.corpus)
    binary = None if args.no_bogofilter else _ensure_bogofilter()
    skipped = {"skipped": "bogofilter not run (--no-bogofilter, or not installable)"}
    per_seed = []
    for seed in args.seeds:
        train_set, test_set = split(items, 0.5, seed=seed)
        run: dict[str, Any] = {"seed": seed, "train": len(train_set), "test": len(test_set)}
        run["mailmoat"] = score_mailmoat(_fit(train_set, seed), test_set)
        run["bogofilter"] = (
            run_bogofilter(binary, train_set, {"dev": test_set})["dev"] if binary else skipped
        )
        per_seed.append(run)
        Console().print(f"seed {seed} done")
    document: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "numpy": np.__version__,
        },
        "corpus": str(args.corpus),
        "messages": len(items),
        "dev_split": {
            "per_seed": per_seed,
            "summary": {name: _summary(per_seed, name) for name in _NAMES},
        },
    }
    tests = {name: _labelled(path) for name, path in (("cross", args.cross),
             ("phishing", args.phishing)) if path is not None}  # fmt: skip
    if tests:
        model = _fit(items, SEEDS[0])
        theirs = run_bogofilter(binary, items, tests) if binary else {}
        for name, test_items in tests.items():
            document[name] = {
                "corpus": str(args.cross if name == "cross" else args.phishing),
                "mailmoat": score_mailmoat(model, test_items),
                "bogofilter": theirs.get(name, skipped),
            }
    document["online"] = online(items, SEEDS[0])
    document["training"] = training_cost(args.corpus)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    Console().print(_table(document))
    Console().print(f"online 1-ROCA%: {document['online']['one_minus_roca_percent']:.4g}")
    Console().print(f"training: {document['training']}")
    Console().print(f"written to {args.out}")


if __name__ == "__main__":
    main()
