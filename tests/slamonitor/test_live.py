"""Month-to-date gauges on a registry: values, cache, alert states, and promtool's lint."""

from __future__ import annotations

import subprocess

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine

from slamonitor.live import SlaCollector, budget_remaining
from store.sla_tables import alerts, availability
from tests.slamonitor.conftest import NOV, event, insert


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_gauges_cache_and_alerts(engine: Engine) -> None:
    insert(
        engine, [event(f"f{i}", NOV + i, 10.0) for i in range(9)] + [event("slow", NOV + 9, 300.0)]
    )
    clock = Clock(NOV + 86400)
    registry = CollectorRegistry()
    registry.register(SlaCollector(engine, clock))
    get = registry.get_sample_value
    assert get("mailmoat_sla_latency_within_target_ratio") == 0.9
    assert get("mailmoat_sla_target_ratio", {"level": "latency"}) == 0.95
    # 10% slow against a 5% budget: the budget is overspent by as much again.
    assert get(
        "mailmoat_sla_error_budget_remaining_ratio", {"level": "latency"}
    ) == budget_remaining("latency", 0.9, 0.95)
    assert get("mailmoat_sla_alert", {"alert": "smtp_down"}) == 0.0

    insert(engine, [event("later", NOV + 100, 1.0)])
    with engine.begin() as conn:
        conn.execute(availability.insert().values(at=clock.now, up=False, detail="refused"))
        conn.execute(
            alerts.insert().values(
                at=clock.now, alert="queue_rising", domain="acme.test", state="firing", detail="x"
            )
        )
    clock.now += 60  # within the cache time: levels are not recomputed, alert states are
    assert get("mailmoat_sla_latency_within_target_ratio") == 0.9
    assert get("mailmoat_sla_alert", {"alert": "smtp_down"}) == 1.0
    assert get("mailmoat_sla_alert", {"alert": "queue_rising", "domain": "acme.test"}) == 1.0
    clock.now += 300
    assert get("mailmoat_sla_latency_within_target_ratio") == 10 / 11


def test_budget_arithmetic() -> None:
    assert budget_remaining("latency", 0.95, 0.95) == 0.0
    assert budget_remaining("latency", 1.0, 0.95) == 1.0
    assert budget_remaining("false_positives", 0.000002, 0.000004) == 0.5


def test_promtool_accepts_the_exposition(engine: Engine, promtool: str) -> None:
    insert(engine, [event("a", NOV + 1, 10.0)])
    registry = CollectorRegistry()
    registry.register(SlaCollector(engine, Clock(NOV + 3600)))
    body = generate_latest(registry)
    done = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert done.stdout.decode().strip() == ""
    assert b'=""' not in body  # no empty label values
