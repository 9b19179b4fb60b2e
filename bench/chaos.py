"""Chaos benchmark: a replay into the real gateway under SIGKILLs, a full disk and an outage.

Writes ``bench/results/chaos.json``: answered 250, delivered, held, lost,
stuck rows, deliveries made twice (and why), the longest wait. See
``loadtest/chaos.py`` for what is done and how it is counted.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from loadtest.chaos import ChaosConfig, load_corpus, run_chaos
from loadtest.chaosreport import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--kills", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--outage", type=float, default=20.0, help="downstream outage, seconds")
    parser.add_argument("--disk-full", type=float, default=10.0, help="full disk, seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench/results/chaos.json"))
    parser.add_argument("--workdir", type=Path, help="keep the store and gateway log here")
    args = parser.parse_args()
    corpus = load_corpus(args.corpus)
    config = ChaosConfig(
        count=args.messages, kills=args.kills, concurrency=args.concurrency,
        outage_seconds=args.outage, disk_full_seconds=args.disk_full, seed=args.seed,
    )  # fmt: skip
    if args.workdir is not None:
        report = asyncio.run(run_chaos(corpus, config, args.workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="mailmoat-chaos-") as work:
            report = asyncio.run(run_chaos(corpus, config, Path(work)))
    report["corpus"] = str(args.corpus)
    write_json(report, args.out)
    keys = ("answered_250", "delivered", "held", "lost", "stuck_rows", "delivered_twice", "kills")
    print({k: report[k] for k in keys})


if __name__ == "__main__":
    main()
