"""After the 250: filter each spooled message, record the outcome, queue deliveries.

A message is filtered per recipient domain (each domain's policy decides
for its own users). The outcome of every domain (events, deliveries,
quarantine entries) is stored in one transaction with the message marked
filtered, so a crash leaves a message either untouched (filtered again at
start-up) or completely handled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from filters.mail import Envelope
from service.actions import decide, group_by_domain, subject_of
from service.classifier import Classifier
from service.dynamic_lists import DynamicLists
from service.metrics import GatewayMetrics
from service.outbound import DeliveryQueue
from store.holding import QuarantineUnavailable
from store.records import Delivery, Spooled
from store.writer import StoreWriter

log = logging.getLogger("mailmoat.processor")


class Processor:
    """A bounded pool of tasks taking spooled messages from a queue."""

    def __init__(
        self,
        classifier: Classifier,
        writer: StoreWriter,
        outbound: DeliveryQueue,
        metrics: GatewayMetrics,
        *,
        concurrency: int,
        clock: Callable[[], float] = time.time,
        quarantine_quota: int = 1_000_000,
        notices: Callable[[Spooled, list[str]], Awaitable[list[Delivery]]] | None = None,
        lists: DynamicLists | None = None,
    ) -> None:
        self.classifier = classifier
        self.writer = writer
        self.outbound = outbound
        self.metrics = metrics
        self.clock = clock
        self.quarantine_quota = quarantine_quota
        self.notices = notices
        self.lists = lists
        self.queue: asyncio.Queue[Spooled] = asyncio.Queue()
        self._tasks = [
            asyncio.create_task(self._work(), name=f"mailmoat-filter-{i}")
            for i in range(concurrency)
        ]

    def submit(self, message: Spooled) -> None:
        self.queue.put_nowait(message)

    async def _work(self) -> None:
        while True:
            message = await self.queue.get()
            try:
                await self.process(message)
            except Exception:  # one bad message must not stop filtering; it stays spooled
                log.exception("filtering failed; message %s stays spooled for retry", message.id)
            finally:
                self.queue.task_done()

    async def process(self, message: Spooled) -> list[Delivery]:
        envelope = Envelope(message.client_ip, message.helo, message.mail_from, message.rcpt_tos)
        groups = group_by_domain(message.rcpt_tos)
        started = time.perf_counter()
        facts = await self.classifier.facts(message.raw, envelope)
        self.metrics.enriched(time.perf_counter() - started)
        if self.lists is not None:
            facts = replace(facts, lists=await self.lists.snapshot())
        for result in facts.dnsbl:
            self.metrics.dns_lookup(result.zone, result.seconds, result.status)
        verdicts = await self.classifier.classify(
            message.raw, envelope, list(groups.values()), facts
        )
        now = self.clock()
        subject = subject_of(message.raw)
        pairs = list(zip(groups.items(), verdicts, strict=True))
        outcomes = [
            decide(message, domain, rcpts, verdict, now, subject=subject)
            for (domain, rcpts), (verdict, _) in pairs
        ]
        store = self.writer.store
        try:
            recorded = await self.writer.call(
                store.record_filtered, message, now, outcomes, self.quarantine_quota
            )
        except QuarantineUnavailable as exc:
            # SPEC 3: what the quarantine cannot take is tagged and delivered instead.
            log.warning("quarantine unavailable for %s: %s; tagging instead", message.id, exc)
            outcomes = [
                decide(message, domain, rcpts, verdict, now, subject=subject, quarantine_ok=False)
                for (domain, rcpts), (verdict, _) in pairs
            ]
            recorded = await self.writer.call(store.record_filtered, message, now, outcomes)
        for (verdict, seconds), (record, _, _) in zip(verdicts, outcomes, strict=True):
            self.metrics.verdict(verdict, seconds)
            log.info(
                "filtered",
                extra={
                    "queue_id": message.id,
                    "domain": record.domain,
                    "action": record.action,
                    "outcome": record.outcome,
                    "score": round(record.score, 2),
                    "symbols": list(record.symbols),
                    "filter_seconds": round(seconds, 4),
                    "since_received_seconds": round(now - message.received_at, 4),
                },
            )
        created = recorded.deliveries
        if recorded.new_accounts and self.notices is not None:
            created += await self.notices(message, recorded.new_accounts)
        self.outbound.add(created)
        return created

    async def drain(self) -> None:
        await self.queue.join()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
