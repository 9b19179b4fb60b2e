"""``mailmoat replay``: the command line of the corpus replay, kept beside the replay it drives.

``add_replay(subparsers)`` registers the subcommand on the ``mailmoat``
parser; ``python -m loadtest.cli replay ...`` runs it alone (the bench does).
Safety: targets must be loopback addresses unless ``--allow-remote`` is
given, so a typo cannot aim a load test at somebody's mail server.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import ipaddress
import random
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from loadtest.corpus import CorpusError, CorpusFormatError, read_corpus
from loadtest.envelopes import Prepared, prepare
from loadtest.feed import feed
from loadtest.replay import Address, Live, ReplayConfig, ReplayResult, replay
from loadtest.report import summarize, summary_table, write_json
from loadtest.report_html import write_html
from loadtest.schedule import ARRIVALS, Bounds, expected_count

DEFAULT_SINK = "127.0.0.1:2526"  # where examples/gateway.toml delivers example.test
REFRESH_SECONDS = 0.25

console = Console()
errors = Console(stderr=True)


def parse_address(value: str) -> Address:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a (host, port) pair."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` resolves to is a loopback address."""
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(f[4][0]).is_loopback for f in found)


def _check_targets(args: argparse.Namespace) -> None:
    for option, address in (("--to", args.to), ("--sink", args.sink)):
        if address is not None and not args.allow_remote and not is_loopback(address[0]):
            raise ValueError(f"{option} {address[0]} is not a loopback address; replay only "
                             "loads remote servers with --allow-remote")  # fmt: skip
    if args.html is not None and importlib.util.find_spec("matplotlib") is None:
        raise ValueError("--html needs matplotlib: pip install matplotlib")


def _stats(live: Live) -> str:
    latencies = sorted(live.latencies)
    median = f"{latencies[len(latencies) // 2] * 1000:.1f} ms" if latencies else "-"
    phase = " draining" if live.draining else ""
    return f"errors {live.failed}  SMTP p50 {median}  lag {live.lag * 1000:.0f} ms{phase}"


async def _with_progress(
    config: ReplayConfig, messages: list[Prepared], total: int | None
) -> ReplayResult:
    """Run the replay under a live bar; the bar polls the run's totals, never slows a send."""
    live, stop = Live(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def interrupted() -> None:
        errors.print("[yellow]stopping: the messages under way finish, then the report[/]")
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C ends the run at once

    # Signal handlers can only be set from the main thread (tests run the command in another).
    handles_interrupt = threading.current_thread() is threading.main_thread()
    if handles_interrupt:
        loop.add_signal_handler(signal.SIGINT, interrupted)
    columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[rate]}  {task.fields[stats]}"))  # fmt: skip
    with Progress(*columns, console=errors) as progress:
        task = progress.add_task("replay", total=total, rate="", stats="")
        running = asyncio.create_task(replay(config, messages, live=live, stop=stop))
        sent, last = 0, loop.time()
        while not running.done():
            await asyncio.wait([running], timeout=REFRESH_SECONDS)
            now = loop.time()
            rate = (live.sent - sent) / (now - last) if now > last else 0.0
            sent, last = live.sent, now
            progress.update(task, completed=live.sent, rate=f"{rate:,.0f}/s", stats=_stats(live))
        progress.update(task, total=live.sent)  # a Poisson schedule's length was an estimate
    if handles_interrupt:
        loop.remove_signal_handler(signal.SIGINT)
    return running.result()


def _bounds(args: argparse.Namespace, corpus_size: int) -> Bounds:
    """The run's limits; with neither --count nor --duration, one pass over the corpus."""
    if args.count is None and args.duration is None:
        return Bounds(count=corpus_size)
    return Bounds(args.count, args.duration)


def skipped_lines(found: Sequence[CorpusError], examples: int = 2) -> list[str]:
    """One line per reason files were skipped, with a count and a few file names."""
    by_reason: dict[str, list[str]] = {}
    for error in found:
        by_reason.setdefault(error.message, []).append(error.path.name)
    return [
        f"skipped {len(names)} file{'s' if len(names) > 1 else ''}: {reason} "
        f"(e.g. {', '.join(names[:examples])})"
        for reason, names in by_reason.items()
    ]


def refusal_lines(summary: dict[str, Any], domain: str | None) -> list[str]:
    """Why the gateway refused messages, one line per reply, and what to do about relaying."""
    lines = []
    for code, count in summary["smtp_errors"].items():
        text = " ".join(str(summary["error_examples"].get(code, "")).split())
        lines.append(f"{count} message{'s' if count > 1 else ''} refused: {text or code}")
        if domain is None and "relay" in text.lower():
            lines.append(
                "  the corpus' recipients are not in the gateway's domains: give --domain "
                "DOMAIN (e.g. --domain example.test) to send them to <local part>@DOMAIN"
            )
    return lines


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay a corpus through the gateway under test and report what came out."""
    _check_targets(args)
    corpus_errors: list[CorpusError] = []
    items = read_corpus(args.corpus, args.labels, on_error=corpus_errors.append)
    messages = prepare(items, args.domain, corpus_errors.append)
    for line in skipped_lines(corpus_errors):
        errors.print(line, markup=False, highlight=False, overflow="ellipsis", no_wrap=True)
    if args.shuffle:
        # Corpora come sorted (often all ham first): --count then takes a mixed sample.
        random.Random(args.seed).shuffle(messages)
    bounds = _bounds(args, len(messages))
    config = ReplayConfig(
        target=args.to, bounds=bounds, sink=None if args.no_sink else args.sink,
        concurrency=args.concurrency, rate=args.rate, arrivals=args.arrivals,
        drain=args.drain, drain_idle=args.drain_idle, seed=args.seed, timeout=args.timeout,
        pipelining=not args.no_pipelining,
    )  # fmt: skip
    total = bounds.count if args.rate is None else expected_count(args.rate, bounds)
    result = asyncio.run(_with_progress(config, messages, total))
    summary = summarize(result, corpus=str(args.corpus), corpus_errors=len(corpus_errors))
    console.print(summary_table(summary))
    for line in refusal_lines(summary, args.domain):
        errors.print(line, markup=False, highlight=False)
    if args.json is not None:
        write_json(summary, args.json)
        console.print(f"report written to {args.json}")
    if args.html is not None:
        write_html(summary, result, args.html, args.json)
        console.print(f"page written to {args.html}")
    if args.feed_sla is not None:
        fed = feed(args.feed_sla, result)
        console.print(f"{fed} labels given to the SLA monitor in {args.feed_sla}")
    return 0 if summary["counts"]["accepted"] else 1


def add_replay(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``replay`` on a parser's subcommands; it runs ``args.func(args)``."""
    p = subparsers.add_parser(
        "replay", help="replay a corpus through a running gateway and report what came out",
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )  # fmt: skip
    p.add_argument(
        "--corpus",
        type=Path,
        required=True,
        help="labels.tsv directory, TREC index, ham/ and spam/, Maildir or mbox",
    )
    p.add_argument("--labels", type=Path, help="index file, relative to the corpus directory")
    p.add_argument(
        "--to",
        type=parse_address,
        required=True,
        metavar="HOST:PORT",
        help="the gateway's SMTP address",
    )
    p.add_argument(
        "--sink",
        type=parse_address,
        default=DEFAULT_SINK,
        metavar="HOST:PORT",
        help="where the replay's own sink listens: the gateway's downstream",
    )
    p.add_argument(
        "--no-sink",
        action="store_true",
        help="no sink: measure sending only (no round trips, held mail or FP/FN)",
    )
    p.add_argument("--concurrency", type=int, default=20, help="SMTP sessions at once")
    p.add_argument(
        "--rate",
        type=float,
        help="messages per second, open loop; default: closed loop, as fast as the gateway answers",
    )
    p.add_argument(
        "--arrivals",
        choices=ARRIVALS,
        default="constant",
        help="open-loop schedule: evenly spaced or a Poisson process",
    )
    p.add_argument(
        "--count",
        type=int,
        help="messages to send, looping the corpus if needed "
        "(default: the corpus once, unless --duration is given)",
    )
    p.add_argument("--duration", type=float, help="seconds during which messages start")
    p.add_argument(
        "--drain",
        type=float,
        default=30.0,
        help="seconds to wait for stragglers after sending; the rest count as held",
    )
    p.add_argument(
        "--drain-idle",
        type=float,
        default=5.0,
        help="stop draining once nothing has arrived for this many seconds",
    )
    p.add_argument("--domain", help="map every recipient to <local part>@DOMAIN")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a reply")
    p.add_argument(
        "--no-pipelining",
        action="store_true",
        help="one command per reply even if the server offers PIPELINING",
    )
    p.add_argument(
        "--shuffle",
        action="store_true",
        help="send the corpus in a random order (seeded by --seed), not in corpus order",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of --shuffle and Poisson arrivals")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the report as JSON here")
    p.add_argument("--feed-sla", type=Path, metavar="STORE",
                   help="give the labels to the SLA monitor in this gateway store")  # fmt: skip
    p.add_argument(
        "--html",
        type=Path,
        metavar="OUT",
        help="write a self-contained HTML page with a latency plot (needs matplotlib)",
    )
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --to or --sink that is not a loopback address")  # fmt: skip
    p.set_defaults(func=cmd_replay)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m loadtest.cli replay ...``: the subcommand without the rest of ``mailmoat``."""
    parser = argparse.ArgumentParser(prog="loadtest")
    add_replay(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (CorpusFormatError, ValueError, OSError) as exc:
        errors.print(f"[red]replay: {exc}[/]")
        return 2


if __name__ == "__main__":
    sys.exit(main())
