"""``mailmoat sla report``: the monthly SLA report as JSON and self-contained HTML."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from slamonitor.config import SlaSettings
from slamonitor.periods import Month
from slamonitor.report import Report, build
from slamonitor.report_html import render


def write_report(
    engine: Engine,
    month: Month,
    settings: SlaSettings,
    *,
    now: float,
    domain: str | None = None,
    json_out: Path | None = None,
    html_out: Path | None = None,
) -> Report:
    """Build the report and write whichever outputs were asked for."""
    report = build(engine, month, settings, now=now, domain=domain)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.data, indent=2) + "\n")
    if html_out is not None:
        html_out.parent.mkdir(parents=True, exist_ok=True)
        html_out.write_text(render(report))
    return report


def cmd_report(args: argparse.Namespace) -> int:
    """Write the month's SLA report for one domain or all of them."""
    from store.engines import is_url
    from store.store import Store

    settings = SlaSettings.load(args.sla_config) if args.sla_config else SlaSettings()
    month = Month.parse(args.month, args.timezone or settings.timezone)
    path = args.db or args.store_path(args.config)
    if not is_url(path) and not Path(path).is_file():
        raise ValueError(f"no store at {path}")
    store = Store(path if is_url(path) else Path(path))
    try:
        report = write_report(
            store.engine,
            month,
            settings,
            now=time.time(),
            domain=args.domain.lower() if args.domain else None,
            json_out=args.json,
            html_out=args.html,
        )
    finally:
        store.close()
    levels = report.data["levels"]
    assert isinstance(levels, dict)
    for name in ("latency", "false_positives", "false_negatives", "availability"):
        level = levels[name]
        print(f"{name}: measured {level['measured']} target {level['target']} met {level['met']}")
    return 0


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    store_path: Callable[[Path | None], Path | str],
) -> None:
    """Register ``sla report``; ``store_path`` reads the store's path from a gateway config."""
    sla = subparsers.add_parser("sla", help="SLA monitor: monthly reports")
    commands = sla.add_subparsers(dest="sla_command", required=True)
    p = commands.add_parser("report", help="write the monthly SLA report")
    p.add_argument("--month", required=True, help="calendar month, e.g. 2026-11")
    p.add_argument("--domain", help="one customer domain (default: every domain)")
    p.add_argument("--json", type=Path, help="write the report as JSON here")
    p.add_argument("--html", type=Path, help="write the report as self-contained HTML here")
    p.add_argument("--config", type=Path, help="gateway config naming the store")
    p.add_argument("--db", "--store", type=Path, help="SQLite store file (overrides --config)")
    p.add_argument("--sla-config", type=Path, help="TOML file with an [sla] table")
    p.add_argument("--timezone", help="IANA time zone of the month (default: from settings, UTC)")
    p.set_defaults(func=cmd_report, store_path=store_path)
