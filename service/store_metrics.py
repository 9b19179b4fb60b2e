"""Gauges read from the store at scrape time: queue age and bytes, quarantine size and quota.

These are what postfix_exporter and rspamd show an operator beside the
counters: how old the oldest undelivered message is (the SLA's 2 minutes
burn while it grows, not only once mail is finally delivered), how many
bytes wait per domain, and how full each domain's quarantine is. They read
the shared store, so in multiprocess mode whichever worker answers the
scrape reports the whole gateway once. Only registered domains are labels;
anything else folds into ``_other``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Engine, func, select

from store.records import DeliveryState
from store.schema import deliveries, messages, quarantine

log = logging.getLogger(__name__)

FOLDED = "_other"


class StoreGauges:
    """One custom collector; ``clock`` is injected so ages are testable on virtual time."""

    def __init__(
        self,
        engine: Engine,
        domains: Iterable[str],
        *,
        quota_per_domain: int,
        clock: Callable[[], float],
    ) -> None:
        self.engine = engine
        self.domains = frozenset(domains)
        self.quota = quota_per_domain
        self.clock = clock

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Registration must not read the store.
        return iter(())

    def _label(self, domain: str) -> str:
        domain = domain.strip().rstrip(".").lower()
        return domain if domain in self.domains else FOLDED

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            queued, held = self._read()
        except Exception:
            # A broken store must not take every other metric down with it.
            log.exception("cannot read queue and quarantine sizes; left out of this scrape")
            return
        now = self.clock()
        age = GaugeMetricFamily(
            "mailmoat_queue_oldest_message_age_seconds",
            "Age of the oldest message still waiting for delivery (0 when none waits).",
            labels=["domain"],
        )
        size = GaugeMetricFamily(
            "mailmoat_queue_bytes", "Bytes of the messages waiting for delivery.", labels=["domain"]
        )
        for domain, (oldest, octets) in sorted(queued.items()):
            age.add_metric([domain], max(0.0, now - oldest) if oldest is not None else 0.0)
            size.add_metric([domain], float(octets))
        held_messages = GaugeMetricFamily(
            "mailmoat_quarantine_messages", "Messages held in quarantine.", labels=["domain"]
        )
        held_bytes = GaugeMetricFamily(
            "mailmoat_quarantine_bytes",
            "Bytes of the messages held in quarantine.",
            labels=["domain"],
        )
        quota = GaugeMetricFamily(
            "mailmoat_quarantine_quota_messages",
            "Messages a domain's quarantine may hold (quarantine.quota_per_domain).",
            labels=["domain"],
        )
        for domain, (count, octets) in sorted(held.items()):
            held_messages.add_metric([domain], float(count))
            held_bytes.add_metric([domain], float(octets))
            if domain != FOLDED:
                quota.add_metric([domain], float(self.quota))
        yield from (age, size, held_messages, held_bytes, quota)

    def _read(
        self,
    ) -> tuple[dict[str, tuple[float | None, int]], dict[str, tuple[int, int]]]:
        queued: dict[str, tuple[float | None, int]] = dict.fromkeys(self.domains, (None, 0))
        held: dict[str, tuple[int, int]] = dict.fromkeys(self.domains, (0, 0))
        # A DSN has its own body; every other delivery sends the spooled message.
        octets = func.coalesce(func.length(deliveries.c.body), messages.c.size)
        waiting = (
            select(deliveries.c.domain, func.min(messages.c.received_at), func.sum(octets))
            .join(messages, messages.c.id == deliveries.c.message_id)
            .where(deliveries.c.state == DeliveryState.PENDING)
            .group_by(deliveries.c.domain)
        )
        holding = (
            select(
                quarantine.c.domain,
                func.count(),
                func.coalesce(func.sum(quarantine.c.size), 0),
            )
            .where(quarantine.c.state == "held")
            .group_by(quarantine.c.domain)
        )
        with self.engine.connect() as conn:
            for domain, oldest, total in conn.execute(waiting):
                label = self._label(domain)
                before, size = queued.get(label, (None, 0))
                first = oldest if before is None else min(before, oldest)
                queued[label] = (first, size + int(total or 0))
            for domain, count, total in conn.execute(holding):
                label = self._label(domain)
                before_count, before_size = held.get(label, (0, 0))
                held[label] = (before_count + int(count), before_size + int(total))
        return queued, held
