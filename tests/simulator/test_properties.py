"""Random small months (hypothesis): whatever the scenario, the report equals the truth."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from simulator.outputs import run_scenario
from simulator.scenario import Scenario

MONTH = datetime(2026, 10, 1)
KINDS = ("outbreak", "downstream_outage", "gateway_outage", "dnsbl_timeout", "maintenance",
         "dos", "quarantine_full", "suspension", "campaign", "config_fault")  # fmt: skip


@st.composite
def events(draw: st.DrawFn, domains: list[str]) -> dict[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    start = MONTH + timedelta(minutes=draw(st.integers(0, 31 * 24 * 60 - 1)))
    event: dict[str, Any] = {
        "kind": kind,
        "start": start,
        "duration": draw(st.integers(60, 3 * 86400)),
    }
    domain = draw(st.sampled_from(domains))
    extra: dict[str, dict[str, Any]] = {
        "outbreak": {"virus_ratio": draw(st.floats(0.001, 0.2))},
        "downstream_outage": {"domain": domain, "mode": draw(st.sampled_from(["refused", "4xx"]))},
        "dnsbl_timeout": {"timeout": draw(st.floats(0.5, 10))},
        "maintenance": {"port_closed": draw(st.booleans())},
        "dos": {"factor": draw(st.floats(1.5, 50)), "declared": True},
        "suspension": {"domain": domain},
        "config_fault": {"domain": domain},
        "campaign": {"domain": domain, "messages": draw(st.integers(1, 300)),
                     "recipients": draw(st.integers(1, 60))},
    }  # fmt: skip
    return event | extra.get(kind, {})


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    names = [f"d{i}.test" for i in range(draw(st.integers(1, 3)))]
    domains = []
    for name in names:
        started = draw(st.none() | st.integers(-40 * 24, 31 * 24))
        domain: dict[str, Any] = {"name": name, "per_day": draw(st.floats(10, 5000))}
        if started is not None:
            domain["started"] = MONTH + timedelta(hours=started)
        domains.append(domain)
    data = {
        "name": "random",
        "month": "2026-10",
        "timezone": draw(st.sampled_from(["UTC", "Europe/Amsterdam", "America/New_York"])),
        "seed": draw(st.integers(0, 2**32)),
        "messages": draw(st.integers(200, 3000)),
        "traffic": {"corpus_size": 60, "spam_share": draw(st.floats(0, 1)),
                    "virus_share": draw(st.floats(0, 0.02))},
        "capacity": {"filter_seconds": draw(st.floats(0.0005, 0.5)),
                     "filter_processes": draw(st.integers(1, 3)),
                     "delivery_concurrency": draw(st.integers(1, 3)),
                     "delivery_seconds": draw(st.floats(0.01, 5))},
        "domains": domains,
        "events": draw(st.lists(events(names), max_size=5)),
        "helpdesk": {"priorities": [
            {"name": p, "tickets": draw(st.integers(0, 5)),
             "median_hours": draw(st.floats(0.1, 30))}
            for p in ("Critical", "Major")
        ]},
        "claims": {k: draw(st.floats(0, 1)) for k in
                   ("fp_claim_share", "fp_reject_share", "fn_report_share", "fn_reject_share")},
    }  # fmt: skip
    try:
        return Scenario.model_validate(data)
    except ValidationError:
        assume(False)
        raise


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_random_months_report_equals_truth(s: Scenario) -> None:
    with tempfile.TemporaryDirectory() as out:
        result = run_scenario(s, Path(out), Path(out), alerts=False)
    assert [f for f in result.check["figures"] if not f["agree"]] == []
