"""A whole simulation from scenario file to output directory, step by named step.

events.db (the gateway's store), truth.json, check.json, metrics.om,
alerts.json and report.html; ``Steps`` lets the command line show progress
without this module knowing about terminals.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.check import compare
from simulator.customers import claims, tickets
from simulator.engine import Run, simulate
from simulator.mix import build_mix
from simulator.scenario import Scenario
from simulator.store_out import write_store
from simulator.truth import truth
from simulator.watch import Watch, watch
from slamonitor.config import SlaSettings
from slamonitor.periods import Month
from slamonitor.report import build

REPORT_AFTER = 30 * 86400.0
"""The report is judged a month after the month ends: every ticket and claim is settled."""


@dataclass
class Steps:
    """Callbacks for progress: a step began, and ``n`` more events were written."""

    begin: Callable[[str], None] = lambda _: None
    written: Callable[[int], None] = lambda _: None


@dataclass(frozen=True, slots=True)
class Result:
    run: Run
    seen: Watch
    truth: dict[str, Any]
    report: dict[str, Any]
    check: dict[str, Any]
    out: Path


def dump(data: object) -> str:
    """JSON that is the same bytes for the same data."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def run_scenario(s: Scenario, base: Path, out: Path, steps: Steps | None = None) -> Result:
    """Simulate ``s`` (files it names are relative to ``base``) and write every output."""
    steps = steps or Steps()
    out.mkdir(parents=True, exist_ok=True)
    steps.begin("judging the distinct messages with the pipeline")
    mix = build_mix(s.traffic, s.seed, out, base)
    run = simulate(s, mix, steps.begin)
    steps.begin("customers, operators and watchers")
    found, desk = claims(run), tickets(run)
    seen = watch(run)
    steps.begin("writing events.db")
    db = out / "events.db"
    write_store(db, run, found, desk, seen, steps.written)
    now = run.end + REPORT_AFTER
    steps.begin("ground truth")
    known = truth(run, found, desk, seen, now)
    (out / "truth.json").write_text(dump(known))
    steps.begin("SLA report from the store")
    report = _report(db, s, now)
    checked = compare(report, known)
    (out / "check.json").write_text(dump(checked))
    return Result(run, seen, known, report, checked, out)


def _report(db: Path, s: Scenario, now: float) -> dict[str, Any]:
    from service.store import Store

    store = Store(db)
    try:
        month = Month.parse(s.month, s.timezone)
        return build(store.engine, month, SlaSettings(timezone=s.timezone), now=now).data
    finally:
        store.close()
