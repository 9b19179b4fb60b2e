"""A scrape serves the last snapshot of an expensive collector and never runs it itself."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from service.snapshots import Prefetched


class Counting(Collector):
    """Stands in for the SLA collector's month scan: counts how often it is run."""

    def __init__(self) -> None:
        self.runs = 0

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.runs += 1
        family = GaugeMetricFamily("mailmoat_expensive", "Costly to compute.")
        family.add_metric([], float(self.runs))
        yield family


def test_scrapes_serve_the_snapshot_without_recomputing() -> None:
    inner = Counting()
    cached = Prefetched(inner)
    registry = CollectorRegistry()
    registry.register(cached)
    assert b"mailmoat_expensive" not in generate_latest(registry)  # nothing until a refresh
    cached.refresh()
    for _ in range(50):
        assert b"mailmoat_expensive 1.0" in generate_latest(registry)
    assert inner.runs == 1
    cached.refresh()
    assert b"mailmoat_expensive 2.0" in generate_latest(registry)
