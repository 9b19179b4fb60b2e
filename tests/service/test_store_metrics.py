"""Queue age and bytes, quarantine size and quota, read from a real SQLite store at scrape time."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from service.store_metrics import FOLDED, StoreGauges
from store.records import DeliveryKind, DeliveryState
from store.store import Store

RAW = b"From: a@sender.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nbody\r\n"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_oldest_age_and_bytes_follow_the_queue(tmp_path: Path) -> None:
    store = Store(tmp_path / "gateway.db")
    clock = Clock(1_000.0)
    registry = CollectorRegistry()
    registry.register(StoreGauges(store.engine, ["example.test"], quota_per_domain=5, clock=clock))
    get = registry.get_sample_value
    assert get("mailmoat_queue_oldest_message_age_seconds", {"domain": "example.test"}) == 0.0
    assert get("mailmoat_queue_bytes", {"domain": "example.test"}) == 0.0

    [first] = store.submit(RAW, ["b@example.test"], 1_000.0, DeliveryKind.ALERT)
    store.submit(RAW, ["c@example.test", "x@elsewhere.test"], 1_100.0, DeliveryKind.ALERT)
    clock.now = 1_150.0
    # The oldest message waits 150 s, whatever came after it; other domains fold.
    assert get("mailmoat_queue_oldest_message_age_seconds", {"domain": "example.test"}) == 150.0
    assert get("mailmoat_queue_bytes", {"domain": "example.test"}) == 2 * len(RAW)
    assert get("mailmoat_queue_oldest_message_age_seconds", {"domain": FOLDED}) == 50.0

    store.finish_delivery(first, DeliveryState.DELIVERED, 1_150.0)
    assert get("mailmoat_queue_oldest_message_age_seconds", {"domain": "example.test"}) == 50.0
    assert get("mailmoat_quarantine_messages", {"domain": "example.test"}) == 0.0
    assert get("mailmoat_quarantine_quota_messages", {"domain": "example.test"}) == 5.0
    store.close()


def test_a_broken_store_leaves_only_these_gauges_out(tmp_path: Path) -> None:
    store = Store(tmp_path / "gateway.db")
    registry = CollectorRegistry()
    registry.register(
        StoreGauges(store.engine, ["example.test"], quota_per_domain=5, clock=Clock(0))
    )
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE deliveries")
    assert registry.get_sample_value("mailmoat_queue_bytes", {"domain": "example.test"}) is None
    store.close()
