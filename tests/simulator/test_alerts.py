"""Alerts over the month with the real rules on a real Prometheus: faults are caught, quiet is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from simulator.alerts import load_rules
from simulator.outputs import run_scenario
from simulator.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


def test_rules_are_the_deployed_ones_with_recordings_inlined() -> None:
    rules = {r.name: r for r in load_rules()}
    assert "MailmoatSmtpDown" in rules and rules["MailmoatSmtpDown"].hold == 120.0
    fast = rules["MailmoatLatencyBudgetBurnFast"].expr
    assert "mailmoat:latency_slow_ratio" not in fast
    assert 'mailmoat_end_to_end_duration_seconds_bucket{le="120.0"}[1h]' in fast


def test_gateway_outage_pages_two_minutes_in(tmp_path: Path, promtool: str) -> None:
    path = SCENARIOS / "gateway-outage.toml"
    result = run_scenario(load_scenario(path, messages=5_000), path.parent, tmp_path)
    found = json.loads((tmp_path / "alerts.json").read_text())
    assert result.alerts == found
    (event,) = found["events"]
    assert event["detected_by"] == "MailmoatSmtpDown"
    assert event["time_to_detect_seconds"] == 120.0  # the rule's for: 2m on 1-minute samples
    down = [a for a in found["alerts"] if a["alert"] == "MailmoatSmtpDown"]
    assert [(a["start"], a["end"]) for a in down] == [
        ("2026-10-20T12:02:00Z", "2026-10-20T14:00:00Z")
    ]
    assert found["undetected"] == []
    page = (tmp_path / "report.html").read_text()
    assert "MailmoatSmtpDown" in page and "99.73" in page


def test_quiet_month_pages_nobody(tmp_path: Path, promtool: str) -> None:
    path = SCENARIOS / "quiet.toml"
    run_scenario(load_scenario(path, messages=5_000), path.parent, tmp_path)
    found = json.loads((tmp_path / "alerts.json").read_text())
    assert found["pages"] == 0
    assert found["alerts"] == []


def test_metrics_are_the_month_as_scraped(tmp_path: Path) -> None:
    path = SCENARIOS / "outage.toml"
    result = run_scenario(load_scenario(path, messages=2_000), path.parent, tmp_path, alerts=False)
    text = (tmp_path / "metrics.om").read_text()
    assert text.startswith("# TYPE mailmoat_end_to_end_duration_seconds histogram\n")
    assert text.endswith("# EOF\n")
    counts = [
        line.split() for line in text.splitlines()
        if line.startswith("mailmoat_end_to_end_duration_seconds_count ")
    ]  # fmt: skip
    assert len(counts) == 31 * 1440  # one scrape a minute (outage.toml: a UTC month)
    last_at = float(counts[-1][2])
    delivered = result.run.delivered
    assert float(counts[-1][1]) == np.count_nonzero(delivered <= last_at)
    assert not (tmp_path / "alerts.json").exists()
