"""``mailmoat sla report`` (JSON and self-contained HTML) and ``sla service`` (start dates)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from slamonitor import services, usage
from slamonitor.config import SlaSettings
from slamonitor.periods import Month, zone
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


@contextmanager
def _engine(args: argparse.Namespace) -> Iterator[Engine]:
    """The store named by ``--db`` or the gateway config; it must exist already."""
    from store.engines import is_url
    from store.store import Store

    path = args.db or args.store_path(args.config)
    if not is_url(path) and not Path(path).is_file():
        raise ValueError(f"no store at {path}")
    store = Store(path if is_url(path) else Path(path))
    try:
        yield store.engine
    finally:
        store.close()


def parse_start(text: str, tz: str) -> float:
    """A date or date-time (ISO 8601); without an offset it is read in ``tz``."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--start must be a date like 2026-11-01, not {text!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=zone(tz))).timestamp()


def cmd_report(args: argparse.Namespace) -> int:
    """Write the month's SLA report for one domain or all of them."""
    settings = SlaSettings.load(args.sla_config) if args.sla_config else SlaSettings()
    month = Month.parse(args.month, args.timezone or settings.timezone)
    with _engine(args) as engine:
        usage.catch_up(engine, settings.timezone)
        report = write_report(
            engine,
            month,
            settings,
            now=time.time(),
            domain=args.domain.lower() if args.domain else None,
            json_out=args.json,
            html_out=args.html,
        )
    levels = report.data["levels"]
    assert isinstance(levels, dict)
    for name in ("latency", "false_positives", "false_negatives", "availability"):
        level = levels[name]
        print(f"{name}: measured {level['measured']} target {level['target']} met {level['met']}")
    return 0


def cmd_service(args: argparse.Namespace) -> int:
    """Record a domain's service start (with --start) and list every recorded start."""
    with _engine(args) as engine:
        if args.domain is not None:
            if args.start is None:
                raise ValueError("give --start DATE to record when the service began")
            with engine.begin() as conn:
                services.set_start(conn, args.domain, parse_start(args.start, args.timezone))
        with engine.connect() as conn:
            found = services.list_services(conn, None)
    for s in found:
        began = datetime.fromtimestamp(s.started_at, zone(args.timezone)).isoformat()
        measured = datetime.fromtimestamp(s.measured_from, zone(args.timezone)).isoformat()
        print(f"{s.domain}: started {began}, measured from {measured}")
    return 0


def _store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="gateway config naming the store")
    p.add_argument("--db", "--store", type=Path, help="SQLite store file (overrides --config)")


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    store_path: Callable[[Path | None], Path | str],
) -> None:
    """Register ``sla report`` and ``sla service``; ``store_path`` reads a gateway config."""
    sla = subparsers.add_parser("sla", help="SLA monitor: monthly reports, service starts")
    commands = sla.add_subparsers(dest="sla_command", required=True)
    p = commands.add_parser("report", help="write the monthly SLA report")
    p.add_argument("--month", required=True, help="calendar month, e.g. 2026-11")
    p.add_argument("--domain", help="one customer domain (default: every domain)")
    p.add_argument("--json", type=Path, help="write the report as JSON here")
    p.add_argument("--html", type=Path, help="write the report as self-contained HTML here")
    _store_options(p)
    p.add_argument("--sla-config", type=Path, help="TOML file with an [sla] table")
    p.add_argument("--timezone", help="IANA time zone of the month (default: from settings, UTC)")
    p.set_defaults(func=cmd_report, store_path=store_path)
    p = commands.add_parser(
        "service", help="record when a customer's service started (first 30 days not measured)"
    )
    p.add_argument("domain", nargs="?", help="customer domain (omit to list every start)")
    p.add_argument("--start", help="date or date-time the service began, e.g. 2026-11-01")
    p.add_argument("--timezone", default="UTC", help="IANA zone of --start (default: UTC)")
    _store_options(p)
    p.set_defaults(func=cmd_service, store_path=store_path)
