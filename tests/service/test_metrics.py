"""Gateway metrics read back from the registry: values, bounded labels, 120 s bucket, workers."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from filters.facts import LookupStatus
from filters.symbols import SYMBOLS
from filters.verdict import Action, Category, Hit, Stage, Verdict
from service.metrics import (
    FOLDED,
    AttemptReason,
    AttemptResult,
    GatewayMetrics,
    RejectReason,
    exposition_registry,
    worker_exited,
)
from store.records import Direction

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = ("example.test", "customer.test")
ZONES = ("zen.dnsbl.test",)


class Queue:
    """A stand-in for the spool's per-domain counts, changed between scrapes."""

    def __init__(self) -> None:
        self.lengths: dict[str, int] = {}
        self.calls = 0

    def __call__(self) -> Mapping[str, int]:
        self.calls += 1
        return dict(self.lengths)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def queue() -> Queue:
    return Queue()


@pytest.fixture
def metrics(registry: CollectorRegistry, queue: Queue) -> GatewayMetrics:
    return GatewayMetrics(registry=registry, domains=DOMAINS, zones=ZONES, queue_lengths=queue)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_message_counters(registry: CollectorRegistry, metrics: GatewayMetrics) -> None:
    metrics.received()
    metrics.received()
    metrics.accepted()
    metrics.rejected(RejectReason.RELAY_DENIED)
    metrics.received(Direction.OUTBOUND)
    metrics.rejected(RejectReason.RATE_LIMITED, Direction.OUTBOUND)
    metrics.deferred("example.test", AttemptReason.CONNECTION)
    metrics.bounced("customer.test", AttemptReason.REPLY)
    metrics.expired("example.test")
    received, rejected = "mailmoat_messages_received_total", "mailmoat_messages_rejected_total"
    assert value(registry, received, direction="inbound") == 2
    assert value(registry, received, direction="outbound") == 1
    assert value(registry, "mailmoat_messages_accepted_total", direction="inbound") == 1
    assert value(registry, "mailmoat_messages_accepted_total", direction="outbound") == 0
    assert value(registry, rejected, reason="relay_denied", direction="inbound") == 1
    assert value(registry, rejected, reason="size", direction="inbound") == 0
    assert value(registry, rejected, reason="rate_limited", direction="outbound") == 1
    assert value(registry, "mailmoat_messages_deferred_total", domain="example.test") == 1
    assert value(registry, "mailmoat_messages_bounced_total", domain="customer.test") == 1
    assert value(registry, "mailmoat_messages_expired_total", domain="example.test") == 1
    assert value(registry, "mailmoat_messages_delivered_total", domain="customer.test") == 0
    attempts = "mailmoat_delivery_attempts_total"
    metrics.attempt("example.test", AttemptResult.DELIVERED, AttemptReason.OK)
    example = {"domain": "example.test"}
    assert value(registry, attempts, **example, result="deferred", reason="connection") == 1
    assert value(registry, attempts, **example, result="deferred", reason="reply") == 0
    assert value(registry, attempts, **example, result="expired", reason="max_age") == 1
    assert value(registry, attempts, **example, result="delivered", reason="ok") == 1
    assert value(registry, attempts, domain="customer.test", result="bounced", reason="reply") == 1
    metrics.released("spam")
    metrics.released("no such category")
    assert value(registry, "mailmoat_quarantine_releases_total", category="spam") == 1
    assert value(registry, "mailmoat_quarantine_releases_total", category=FOLDED) == 1


def test_build_process_and_python_info_without_created_series(
    registry: CollectorRegistry, metrics: GatewayMetrics
) -> None:
    version = importlib.metadata.version("mailmoat")
    assert value(registry, "mailmoat_build_info", version=version) == 1
    assert value(registry, "process_open_fds") is not None
    text = generate_latest(registry).decode()
    assert "python_info{" in text and "_created" not in text


def test_verdict_counts_action_hits_and_time(
    registry: CollectorRegistry, metrics: GatewayMetrics
) -> None:
    hits = (
        Hit("BLACKLIST_DNSBL", Stage.BLACKLIST, "listed", 5.0, Action.QUARANTINE),
        Hit("HEURISTIC_MODEL", Stage.HEURISTICS, "p=0.99", 3.0),
    )
    metrics.verdict(Verdict(Action.QUARANTINE, Category.SPAM, hits, 8.0), 0.2)
    metrics.verdict(Verdict(Action.DELIVER, Category.CLEAN), 150.0)
    metrics.verdict(Verdict(Action.DELIVER, Category.CLEAN), 0.1, Direction.OUTBOUND)
    verdicts = "mailmoat_verdicts_total"
    inbound = {"direction": "inbound"}
    assert value(registry, verdicts, action="quarantine", category="spam", **inbound) == 1
    assert value(registry, verdicts, action="deliver", category="clean", **inbound) == 1
    assert value(registry, verdicts, action="tag_subject", category="spam", **inbound) == 0
    outbound = {"direction": "outbound"}
    assert value(registry, verdicts, action="deliver", category="clean", **outbound) == 1
    hit = "mailmoat_filter_hits_total"
    assert value(registry, hit, stage="blacklist", symbol="BLACKLIST_DNSBL") == 1
    assert value(registry, hit, stage="heuristics", symbol="HEURISTIC_MODEL") == 1
    seconds = "mailmoat_filter_duration_seconds"
    assert value(registry, seconds + "_count") == 3
    assert value(registry, seconds + "_sum") == pytest.approx(150.3)
    assert value(registry, seconds + "_bucket", le="120.0") == 2
    assert value(registry, seconds + "_bucket", le="300.0") == 3


def test_end_to_end_histogram_has_the_sla_bucket(
    registry: CollectorRegistry, metrics: GatewayMetrics
) -> None:
    metrics.delivered("example.test", 119.5)
    metrics.delivered("Example.Test.", 120.0)
    metrics.delivered("example.test", 121.0)
    name = "mailmoat_end_to_end_duration_seconds_bucket"
    # le is inclusive: exactly two minutes meets the SLA.
    assert value(registry, name, le="120.0") == 2
    assert value(registry, name, le="60.0") == 0
    assert value(registry, "mailmoat_messages_delivered_total", domain="example.test") == 3


@pytest.mark.parametrize("domain", ["attacker.test", "", "x" * 300, "example.test.evil"])
def test_unknown_domains_fold(
    registry: CollectorRegistry, metrics: GatewayMetrics, domain: str
) -> None:
    metrics.delivered(domain, 1.0)
    metrics.deferred(domain, AttemptReason.REPLY)
    assert value(registry, "mailmoat_messages_delivered_total", domain=FOLDED) == 1
    assert value(registry, "mailmoat_messages_deferred_total", domain=FOLDED) == 1
    assert value(registry, "mailmoat_messages_delivered_total", domain=domain) is None


def test_dns_lookups_by_zone_and_fold(registry: CollectorRegistry, metrics: GatewayMetrics) -> None:
    metrics.dns_lookup("zen.dnsbl.test", 0.02, LookupStatus.NOT_LISTED)
    metrics.dns_lookup("ZEN.dnsbl.test.", 3.0, LookupStatus.TIMEOUT)
    metrics.dns_lookup("rogue.zone.test", 0.5, LookupStatus.ERROR)
    assert value(registry, "mailmoat_dns_failures_total", zone="zen.dnsbl.test") == 1
    assert value(registry, "mailmoat_dns_failures_total", zone=FOLDED) == 1
    # Timeouts apart from errors: a slow list is not a broken one.
    lookups = "mailmoat_dnsbl_lookups_total"
    assert value(registry, lookups, zone="zen.dnsbl.test", result="timeout") == 1
    assert value(registry, lookups, zone="zen.dnsbl.test", result="error") == 0
    assert value(registry, lookups, zone="zen.dnsbl.test", result="not_listed") == 1
    assert value(registry, lookups, zone=FOLDED, result="error") == 1
    count = "mailmoat_dns_lookup_duration_seconds_count"
    assert value(registry, count, zone="zen.dnsbl.test") == 2
    assert value(registry, count, zone="rogue.zone.test") is None


def test_symbol_labels_are_bounded_by_the_registry(
    registry: CollectorRegistry, metrics: GatewayMetrics
) -> None:
    odd = Hit("not a symbol {}", Stage.CONTENT, "weird")
    unregistered = tuple(Hit(f"RULE_{i}", Stage.HEURISTICS, "r") for i in range(300))
    known = Hit("GTUBE", Stage.HEURISTICS, "test string")
    metrics.verdict(Verdict(Action.DELIVER, Category.CLEAN, (odd, *unregistered, known)), 0.1)
    name = "mailmoat_filter_hits_total"
    assert value(registry, name, stage="content", symbol=FOLDED) == 1
    assert value(registry, name, stage="heuristics", symbol=FOLDED) == 300
    assert value(registry, name, stage="heuristics", symbol="GTUBE") == 1
    assert value(registry, name, stage="heuristics", symbol="RULE_0") is None
    labels = {
        s.labels["symbol"]
        for metric in registry.collect()
        if metric.name == "mailmoat_filter_hits"
        for s in metric.samples
    }
    assert labels <= {*SYMBOLS, FOLDED}


def test_sessions_open(registry: CollectorRegistry, metrics: GatewayMetrics) -> None:
    metrics.session_opened()
    metrics.session_opened()
    metrics.session_closed()
    assert value(registry, "mailmoat_smtp_sessions_open") == 1


def test_queue_gauge_reads_live(
    registry: CollectorRegistry, metrics: GatewayMetrics, queue: Queue
) -> None:
    name = "mailmoat_queue_messages"
    assert value(registry, name, domain="example.test") == 0
    assert value(registry, name, domain=FOLDED) is None
    queue.lengths = {"example.test": 4, "stray.test": 2, "other.test": 1}
    assert value(registry, name, domain="example.test") == 4
    assert value(registry, name, domain="customer.test") == 0
    assert value(registry, name, domain=FOLDED) == 3
    queue.lengths = {"example.test": 1}
    assert value(registry, name, domain="example.test") == 1
    assert queue.calls >= 3


def test_broken_queue_store_drops_only_the_queue_gauge(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> Mapping[str, int]:
        raise OSError("database is locked")

    metrics = GatewayMetrics(registry=registry, domains=DOMAINS, queue_lengths=broken)
    metrics.received()
    with caplog.at_level(logging.ERROR, logger="service.metrics"):
        assert value(registry, "mailmoat_queue_messages", domain="example.test") is None
        assert value(registry, "mailmoat_messages_received_total", direction="inbound") == 1
    assert "cannot read queue lengths" in caplog.text


@pytest.mark.parametrize("domains", [("example.test", ""), (FOLDED,)])
def test_bad_registered_names_are_refused(domains: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="invalid domains"):
        GatewayMetrics(registry=CollectorRegistry(), domains=domains, queue_lengths=dict)


def test_single_process_scrapes_the_injected_registry(
    registry: CollectorRegistry, metrics: GatewayMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert exposition_registry(registry, metrics) is registry


WORKER = """
import os
from prometheus_client import CollectorRegistry, generate_latest
from service.metrics import GatewayMetrics
metrics = GatewayMetrics(registry=CollectorRegistry(), domains=["example.test"], queue_lengths=dict)
metrics.received()
metrics.session_opened()
metrics.delivered("example.test", 1.0)
print(os.getpid())
"""

SCRAPER = """
from prometheus_client import CollectorRegistry, generate_latest
from service.metrics import GatewayMetrics, exposition_registry
registry = CollectorRegistry()
metrics = GatewayMetrics(
    registry=registry, domains=["example.test"], queue_lengths=lambda: {"example.test": 3}
)
print(generate_latest(exposition_registry(registry, metrics)).decode())
"""


def run_python(code: str, directory: Path) -> str:
    # A fresh interpreter: prometheus_client picks multiprocess mode when first imported.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


def test_workers_aggregate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = int(run_python(WORKER, tmp_path))
    run_python(WORKER, tmp_path)
    merged = samples(run_python(SCRAPER, tmp_path))
    assert merged[("mailmoat_messages_received_total", (("direction", "inbound"),))] == 2
    assert merged[("mailmoat_messages_delivered_total", (("domain", "example.test"),))] == 2
    assert merged[("mailmoat_end_to_end_duration_seconds_count", ())] == 2
    assert merged[("mailmoat_smtp_sessions_open", ())] == 2
    # The live queue gauge is reported once by the scraping worker, not summed per worker.
    assert merged[("mailmoat_queue_messages", (("domain", "example.test"),))] == 3

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    worker_exited(first)
    after = samples(run_python(SCRAPER, tmp_path))
    assert after[("mailmoat_smtp_sessions_open", ())] == 1
    assert after[("mailmoat_messages_received_total", (("direction", "inbound"),))] == 2
