"""deploy/: promtool checks and unit-tests the rules; the dashboard only uses exported series."""

from __future__ import annotations

import json
import re
import subprocess

from tests.slamonitor.conftest import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "mailmoat-sla.json"
GATEWAY_SERIES = {
    "ALERTS",
    "up",
    "probe_success",
    "process_cpu_seconds_total",
    "mailmoat_build_info",
    "mailmoat_messages_received_total",
    "mailmoat_messages_accepted_total",
    "mailmoat_messages_delivered_total",
    "mailmoat_messages_rejected_total",
    "mailmoat_delivery_attempts_total",
    "mailmoat_queue_messages",
    "mailmoat_queue_bytes",
    "mailmoat_queue_oldest_message_age_seconds",
    "mailmoat_filter_stage_duration_seconds_bucket",
    "mailmoat_end_to_end_duration_seconds_bucket",
    "mailmoat_dnsbl_lookups_total",
    "mailmoat_verdicts_total",
    "mailmoat_quarantine_messages",
    "mailmoat_quarantine_quota_messages",
    "mailmoat_quarantine_releases_total",
    "mailmoat_smtp_sessions_open",
    "mailmoat_policy_valid",
    "mailmoat_store_commit_duration_seconds_bucket",
}
"""Series the gateway, Prometheus or the blackbox exporter export (the integration test
checks each query returns data from a real Prometheus)."""


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
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    rules = (PROMETHEUS / "rules.yml").read_text()
    live = (ROOT / "slamonitor" / "live.py").read_text()
    for expr in exprs:
        names = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*(?=\{)", expr)
        for name in names or re.findall(r"^[A-Za-z_:][A-Za-z0-9_:]*$", expr):
            if name.startswith("mailmoat:"):
                assert f"record: {name}" in rules, name
            elif name.startswith("mailmoat_sla_"):
                assert name.removeprefix("mailmoat_sla_") in live, name
            else:
                assert name in GATEWAY_SERIES, name
    titles = " ".join(p["title"] for p in dashboard["panels"])
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "job", "instance"} <= variables
    for level in (
        "Latency",
        "False positives",
        "False negatives",
        "Availability",
        "Helpdesk",
        "Virus release",
        "Queue length",
        "Alert states",
        "Traffic",
        "Rejected",
        "Delivery attempts",
        "Oldest queued message",
        "Filter time per stage",
        "DNS block lists",
        "Quarantine",
    ):
        assert level in titles
