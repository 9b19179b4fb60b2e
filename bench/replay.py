"""Replay bench (issue 6): the replay tool must not be the bottleneck of a replay.

Against Postfix's ``smtp-sink`` (which drops what it gets) it must reach at
least 70% of Postfix ``smtp-source``'s rate with the same number of sessions,
messages and message size. Both run in one invocation, alternating for a few
rounds; the medians decide. The message size given to smtp-source is the
mean size of the corpus messages the replay sends. The replay runs as
``python -m loadtest.cli replay --no-sink`` and its rate is the one in its
own report: accepted messages over the span from the first connection to
the last reply (reading the corpus is not part of it; smtp-source's run
includes its process start, a few milliseconds). smtp-source talks
lock-step; the replay pipelines (RFC 2920), which is why it can keep up
from Python. A lock-step replay run is reported beside it for comparison.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from e2e_servers import ensure_postfix, smtp_sink, smtp_source
from result_file import write_result
from rich.console import Console
from rich.table import Table

from loadtest.corpus import read_corpus
from loadtest.envelopes import prepare

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.70
DOMAIN = "example.test"
console = Console()


def _mean_size(corpus: Path, count: int) -> int:
    """Mean size of the ``count`` messages the replay will send (the corpus, looped)."""
    messages = prepare(read_corpus(corpus), DOMAIN, lambda error: None)
    sizes = [messages[i % len(messages)].size for i in range(count)]
    return round(sum(sizes) / len(sizes))


def _replay(port: int, args: argparse.Namespace, out: Path, *extra: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "loadtest.cli", "replay", "--corpus", str(args.corpus),
            "--to", f"127.0.0.1:{port}", "--no-sink", "--domain", DOMAIN,
            "--count", str(args.count), "--concurrency", str(args.concurrency),
            "--json", str(out), *extra]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"replay failed ({done.returncode}): {done.stderr[-500:]}")
    report: dict[str, Any] = json.loads(out.read_text())
    return {
        "messages_per_second": report["throughput"]["accepted_per_second"],
        "accepted": report["counts"]["accepted"],
        "smtp_errors": report["smtp_errors"],
        "send_seconds": report["throughput"]["seconds"],
        "process_seconds": round(wall, 3),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    missing = ensure_postfix()
    if missing:
        raise SystemExit(f"bench/replay.py needs Postfix's smtp-sink and smtp-source: {missing}")
    size = _mean_size(args.corpus, args.count)
    rounds = []
    with (
        tempfile.TemporaryDirectory(prefix="mailmoat-replay-") as tmp,
        smtp_sink(Path(tmp) / "smtp-sink.log") as port,
    ):
        for number in range(args.rounds):
            source = smtp_source(port, sessions=args.concurrency, count=args.count,
                                 size=size, mail_from="loadtest@sender.test",
                                 rcpt=f"bob@{DOMAIN}")  # fmt: skip
            if source.returncode != 0:
                raise RuntimeError(f"smtp-source failed: {source.stderr}")
            replay = _replay(port, args, Path(tmp) / f"replay-{number}.json")
            # For comparison only: what pipelining buys (smtp-source talks lock-step too).
            lock_step = _replay(port, args, Path(tmp) / f"lock-{number}.json", "--no-pipelining")
            rounds.append({"smtp_source_per_second": round(args.count / source.seconds, 1),
                           "replay": replay, "replay_lock_step": lock_step})  # fmt: skip
            console.log(f"round {number + 1}: smtp-source "
                        f"{rounds[-1]['smtp_source_per_second']:,.0f}/s, replay "
                        f"{replay['messages_per_second']:,.0f}/s (lock-step "
                        f"{lock_step['messages_per_second']:,.0f}/s)")  # fmt: skip
    source_rate = statistics.median(r["smtp_source_per_second"] for r in rounds)
    replay_rate = statistics.median(r["replay"]["messages_per_second"] for r in rounds)
    lock_rate = statistics.median(r["replay_lock_step"]["messages_per_second"] for r in rounds)
    ratio = round(replay_rate / source_rate, 3)
    return {
        "benchmark": "replay",
        "note": "client and smtp-sink share the machine's cores",
        "server": "postfix smtp-sink on 127.0.0.1",
        "corpus": str(args.corpus),
        "messages_per_round": args.count,
        "mean_message_bytes": size,
        "concurrency": args.concurrency,
        "rounds": rounds,
        "smtp_source_per_second": source_rate,
        "replay_per_second": replay_rate,
        "replay_lock_step_per_second": lock_rate,
        "ratio": ratio,
        "target": {"ratio_at_least": TARGET_RATIO, "met": ratio >= TARGET_RATIO},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/corpus/spamassassin")
    parser.add_argument("--count", type=int, default=50_000, help="messages per run")
    parser.add_argument("--concurrency", type=int, default=20, help="SMTP sessions at once")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each client")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/replay.json")
    args = parser.parse_args()
    result = run(args)
    table = Table(title=f"replay vs smtp-source, {args.concurrency} sessions")
    table.add_column("client")
    table.add_column("messages/s (median)", justify="right")
    table.add_row("postfix smtp-source", f"{result['smtp_source_per_second']:,.0f}")
    table.add_row("mailmoat replay", f"{result['replay_per_second']:,.0f}")
    table.add_row("mailmoat replay --no-pipelining",
                  f"{result['replay_lock_step_per_second']:,.0f}")  # fmt: skip
    met = "met" if result["target"]["met"] else "NOT met"
    table.add_row("ratio", f"{result['ratio']:.2f} (target {TARGET_RATIO:.2f}: {met})")
    console.print(table)
    write_result(args.out, result, echo=False)
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
