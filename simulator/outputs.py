"""A whole simulation from scenario file to output directory, step by named step.

events.db (the gateway's store), truth.json, check.json, metrics.om,
alerts.json and report.html, in that order (a failure leaves the earlier
ones); ``Steps`` lets the command line show progress without this module
knowing about terminals.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.alerts import AlertsUnavailable, evaluate
from simulator.check import compare
from simulator.customers import claims, tickets
from simulator.detect import detection
from simulator.engine import Run, simulate
from simulator.mix import build_mix
from simulator.openmetrics import lines, series
from simulator.report_html import render
from simulator.scenario import Scenario
from simulator.store_out import write_store
from simulator.truth import truth
from simulator.watch import Watch, watch
from slamonitor.config import SlaSettings
from slamonitor.periods import Month
from slamonitor.report import build
from store.store import Store

REPORT_AFTER = 30 * 86400.0
"""The report is judged a month after the month ends: every ticket and claim is settled."""


@dataclass
class Steps:
    """Callbacks for progress: a step began; ``n`` more events of ``total`` were written."""

    begin: Callable[[str], None] = lambda _: None
    written: Callable[[int, int], None] = lambda n, total: None


@dataclass(frozen=True, slots=True)
class Result:
    run: Run
    seen: Watch
    truth: dict[str, Any]
    report: dict[str, Any]
    check: dict[str, Any]
    alerts: dict[str, Any] | None
    out: Path


def dump(data: object) -> str:
    """JSON that is the same bytes for the same data."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def run_scenario(
    s: Scenario, base: Path, out: Path, steps: Steps | None = None, *, alerts: bool = True
) -> Result:
    """Simulate ``s`` (files it names are relative to ``base``) and write every output;
    ``alerts`` False skips Prometheus (the rules need a real one and take seconds)."""
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
    write_store(db, run, found, desk, seen, lambda n: steps.written(n, len(run)))
    now = run.end + REPORT_AFTER
    steps.begin("ground truth")
    known = truth(run, found, desk, seen, now)
    (out / "truth.json").write_text(dump(known))
    steps.begin("SLA report from the store")
    report = _report(db, s, now)
    checked = compare(report, known)
    (out / "check.json").write_text(dump(checked))
    steps.begin("metrics.om as scraped every minute")
    at, families = series(run, seen)
    with (out / "metrics.om").open("w") as f:
        f.writelines(lines(at, families))
    fired: list[dict[str, Any]] = []
    detected: dict[str, Any] | None = None
    if alerts:
        steps.begin("alert rules on a real Prometheus")
        try:
            fired = evaluate(out / "metrics.om", run.start, run.end)
            detected = detection(s, fired)
        except AlertsUnavailable as exc:
            detected = {"scenario": s.name, "unavailable": str(exc)}
        (out / "alerts.json").write_text(dump(detected))
    steps.begin("report.html")
    shown = detected if detected is not None and "events" in detected else None
    (out / "report.html").write_text(render(run, seen, checked, shown, fired))
    return Result(run, seen, known, report, checked, detected, out)


def _report(db: Path, s: Scenario, now: float) -> dict[str, Any]:
    store = Store(db)
    try:
        month = Month.parse(s.month, s.timezone)
        return build(store.engine, month, SlaSettings(timezone=s.timezone), now=now).data
    finally:
        store.close()
