"""Filter throughput: the whole pure pipeline, one process, no network, on the shared corpus.

Files are read into memory first so the number measures parsing and filtering,
not the disk. The model is trained on the same corpus beforehand (its accuracy
is bench/accuracy.py's business; here it only has to be realistic in size).
Target (issue 2): at least 3,000 messages per second.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from filters.facts import NO_FACTS
from filters.mail import Mail
from filters.model import train
from filters.pipeline import evaluate
from filters.policy import load_policy
from filters.runtime import Policy
from loadtest.corpus import read_corpus

ROOT = Path(__file__).resolve().parent.parent
TARGET = 3000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/corpus/spamassassin")
    parser.add_argument("--policy", type=Path, default=ROOT / "examples/policy.toml")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the corpus; best counts")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/throughput.json")
    args = parser.parse_args()

    items = list(read_corpus(args.corpus))
    model = train(((Mail.from_file_bytes(i.data), i.label == "spam") for i in items), seed=1)
    config = load_policy(args.policy).model_copy(update={"model": None})
    policy = dataclasses.replace(Policy.from_config(config), model=model)
    blobs = [i.data for i in items]

    rates = []
    actions: Counter[str] = Counter()
    for _ in range(args.rounds):
        actions.clear()
        start = time.perf_counter()
        for blob in blobs:
            verdict = evaluate(Mail.from_file_bytes(blob), NO_FACTS, policy)
            actions[verdict.action.label] += 1
        rates.append(len(blobs) / (time.perf_counter() - start))

    result = {
        "benchmark": "filter_throughput",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
        },
        "corpus": str(args.corpus),
        "messages": len(blobs),
        "bytes": sum(len(b) for b in blobs),
        "rounds": args.rounds,
        "messages_per_second": round(max(rates), 1),
        "messages_per_second_each_round": [round(r, 1) for r in rates],
        "target_messages_per_second": TARGET,
        "met": max(rates) >= TARGET,
        "actions": dict(actions),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("messages", "messages_per_second", "met")}))


if __name__ == "__main__":
    main()
