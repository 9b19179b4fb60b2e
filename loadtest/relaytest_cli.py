"""``mailmoat relaytest HOST:PORT``: run the open-relay probes against a mail server.

Loopback targets only unless ``--allow-remote`` (as with replay): relay
probing somebody's server unasked is abuse. Exit status 0 when every relay
probe was refused, 1 when the server accepted any, 2 on a usage error or an
unreachable server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from loadtest.cli import is_loopback, parse_address
from loadtest.relaytest import FOREIGN, RelayReport, run_relay_test

console = Console()


def check_target(host: str, allow_remote: bool) -> None:
    """Refuse a target that is not loopback unless remote targets were allowed."""
    if not allow_remote and not is_loopback(host):
        raise ValueError(
            f"{host} is not a loopback address; relaytest only probes remote servers "
            "with --allow-remote"
        )


def render(report: RelayReport) -> Table:
    table = Table(title=f"relay probes against {report.target}")
    for column in ("probe", "MAIL FROM", "RCPT TO", "reply", "verdict"):
        table.add_column(column)
    for o in (report.control, *report.outcomes):
        if o.probe == "control":
            verdict = "[green]takes mail[/]" if o.accepted else "[yellow]refused own domain[/]"
        else:
            verdict = "[red]ACCEPTED[/]" if o.accepted else "[green]refused[/]"
        reply = f"{o.code} {o.reply}" if o.code is not None else o.reply
        table.add_row(o.probe, f"<{o.mail_from}>", f"<{o.rcpt_to}>", reply, verdict)
    return table


def cmd_relaytest(args: argparse.Namespace) -> int:
    host, port = args.target
    check_target(host, args.allow_remote)
    report = asyncio.run(
        run_relay_test(
            host, port, local_domain=args.domain, foreign_domain=args.foreign, timeout=args.timeout
        )
    )
    if not report.reachable:
        raise ValueError(f"cannot test {report.target}: {report.control.reply}")
    console.print(render(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if report.open_relay:
        console.print(f"[red]open relay: accepted {', '.join(report.accepted)}[/]")
        return 1
    console.print(f"not an open relay: {len(report.outcomes)} relay probes refused")
    return 0


def add_relaytest(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``relaytest`` on a parser's subcommands; it runs ``args.func(args)``."""
    p = subparsers.add_parser(
        "relaytest", help="test a mail server for open relay", description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )  # fmt: skip
    p.add_argument("target", type=parse_address, help="HOST:PORT of the server to probe")
    p.add_argument("--domain", required=True, help="the server's own (customer) domain")
    p.add_argument("--foreign", default=FOREIGN, help="domain the probes try to relay to")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per SMTP step")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the report as JSON")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a target that is not a loopback address")  # fmt: skip
    p.set_defaults(func=cmd_relaytest)
