"""deploy/: promtool checks and unit-tests the rules; the dashboard only uses exported series."""

from __future__ import annotations

import json
import re
import subprocess

from tests.slamonitor.conftest import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "mailmoat-sla.json"
GATEWAY_SERIES = {"mailmoat_queue_messages", "ALERTS"}


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, cwd=PROMETHEUS)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_rules_check(promtool: str) -> None:
    assert "SUCCESS" in run(promtool, "check", "rules", "rules.yml")


def test_rules_unit_tests(promtool: str) -> None:
    assert "SUCCESS" in run(promtool, "test", "rules", "rules_test.yml")


def test_scrape_config_check(promtool: str) -> None:
    run(promtool, "check", "config", "prometheus.yml")


def test_dashboard_queries_known_series() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = (PROMETHEUS / "rules.yml").read_text()
    live = (ROOT / "slamonitor" / "live.py").read_text()
    for expr in exprs:
        for name in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*(?=[{\s]|$)", expr):
            if name.startswith("mailmoat:"):
                assert f"record: {name}" in rules, name
            elif name.startswith("mailmoat_sla_"):
                assert name.removeprefix("mailmoat_sla_") in live, name
            else:
                assert name in GATEWAY_SERIES, name
    titles = " ".join(p["title"] for p in dashboard["panels"])
    for level in (
        "Latency",
        "False positives",
        "False negatives",
        "Availability",
        "Helpdesk",
        "Virus release",
        "Queue length",
        "Alert states",
    ):
        assert level in titles
