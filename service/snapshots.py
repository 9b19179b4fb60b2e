"""Expensive metric collectors read off the scrape's path: a background refresh, a cached answer.

The SLA gauges read the month's events; recomputed inside a scrape, one
scrape in every cache period waited seconds for them (p95 168 ms, max over
200 ms during a 250 msg/s replay). Here a background thread collects every
``interval`` seconds and a scrape only serialises the last snapshot, so its
cost no longer depends on the store's size or load.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger("mailmoat.metrics")


class Prefetched(Collector):
    """Serves ``inner``'s last collected families; ``run()`` keeps them fresh."""

    def __init__(self, inner: Collector, interval: float = 5.0) -> None:
        self.inner = inner
        self.interval = interval
        self._families: list[Metric] = []

    def refresh(self) -> None:
        """Collect now (blocking; call from a thread)."""
        self._families = list(self.inner.collect())

    def describe(self) -> Iterator[Metric]:
        return iter(())  # registration must not read the store

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # the inner collector logs its own trouble; keep the last snapshot
                log.exception("metrics refresh failed; serving the previous snapshot")
            await asyncio.sleep(self.interval)
