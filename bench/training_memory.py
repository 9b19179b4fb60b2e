"""Training memory on 100,000 messages: bounded by the vocabulary, not the corpus (issue 14).

There is no labelled public corpus of 100,000 messages, so the shared
SpamAssassin corpus is streamed round and round until ``--messages`` have been
read. Repeating it unchanged would only re-count the same vocabulary, which
flatters the measure; so every copy after the first gets one header naming its
round and one word of its own (``X-Bench-Copy: r3 u123456``): the vocabulary
grows by a new token per message, the long tail a real stream of new mail
brings. Messages are read from disk as they are needed and dropped, so what the
child's peak RSS measures is training, not a corpus held in memory.

Training runs in a child process (``--child``) so its peak RSS is its own;
the target is 300 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from result_file import write_result

from filters.mail import Mail
from filters.training import train
from loadtest.corpus import read_corpus

ROOT = Path(__file__).resolve().parent.parent
TARGET_MB = 300.0


def stream(corpus: Path, messages: int) -> Iterator[tuple[Mail, bool]]:
    """``messages`` labelled messages: the corpus in order, round after round, each copy
    after the first marked with its round and a word of its own."""
    labelled = [(i.path, i.label == "spam") for i in read_corpus(corpus) if i.label]
    sent = 0
    round_ = 0
    while True:
        for path, spam in labelled:
            if sent == messages:
                return
            data = path.read_bytes()
            if round_:
                data = f"X-Bench-Copy: r{round_} u{sent}\n".encode() + data
            yield Mail.from_file_bytes(data), spam
            sent += 1
        round_ += 1


def child(corpus: Path, messages: int) -> None:
    start = time.perf_counter()
    model = train(stream(corpus, messages), seed=1, corpus=str(corpus))
    print(
        json.dumps(
            {
                "seconds": round(time.perf_counter() - start, 1),
                "weights": len(model.weights),
                "evidence_tokens": len(model.evidence),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/training_memory.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.corpus, args.messages)
        return
    done = subprocess.run(
        [sys.executable, __file__, "--child", "--corpus", str(args.corpus),
         "--messages", str(args.messages)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    write_result(
        args.out,
        {
            "benchmark": "training_memory",
            "corpus": str(args.corpus),
            "messages": args.messages,
            "note": "the corpus streamed in rounds; each copy after the first adds a new token",
            **figures,
            "messages_per_second": round(args.messages / figures["seconds"], 1),
            "peak_rss_mb": round(peak_mb, 1),
            "target": {"peak_rss_mb_at_most": TARGET_MB, "met": peak_mb <= TARGET_MB},
        },
    )


if __name__ == "__main__":
    main()
