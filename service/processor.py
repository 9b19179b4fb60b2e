"""After the 250: filter each spooled message, record the outcome, queue deliveries.

A message is filtered per recipient domain (each domain's policy decides
for its own users); outbound mail (from the submission listener) is filtered
once, by its sender's domain's policy, and that verdict applies to every
recipient domain. The outcome of every domain (events, deliveries,
quarantine entries) is stored in one transaction with the message marked
filtered, so a crash leaves a message either untouched (filtered again at
start-up) or completely handled.

Every message ends: filtering that fails (a parser bug, a crashed or hung
filter process) is tried ``max_attempts`` times, then the message is held in
quarantine as *unscanned* for an operator, with an event saying why; a store
fault while recording is waited out (retried in-process until the store
takes the write), never turned into a lost or a stuck message. A virus the
full quarantine cannot take is never tagged through like spam: the message
stays spooled and is filtered again every ``full_retry`` seconds until the
quarantine has room (``waiting`` counts them for the alert). Virus alerts
(``virus_alerts``) are stored with the outcome, in the same transaction. The backlog
(messages accepted, not yet filtered, and their bytes) is counted so the SMTP
side can refuse new mail with 451 before memory runs out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from filters.lists import domain_of
from filters.mail import Envelope
from filters.verdict import Verdict
from service.actions import (
    DomainOutcome,
    decide,
    group_by_domain,
    sender_suspect,
    subject_of,
    unscanned,
)
from service.classifier import Classified, Classifier
from service.dynamic_lists import DynamicLists
from service.metrics import GatewayMetrics
from service.outbound import DeliveryQueue
from service.storeretry import until_written
from service.virus_alerts import AlertSettings, AlertTo, Planned, plan
from store.holding import QuarantineUnavailable
from store.queue import bounced_alerts
from store.records import Delivery, Direction, Filtered, NewDelivery, Recorded, Spooled
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
        notices: Callable[[list[str], float], Sequence[NewDelivery]] | None = None,
        lists: DynamicLists | None = None,
        max_attempts: int = 3,
        retry_delay: float = 1.0,
        max_backlog_messages: int = 10_000,
        max_backlog_bytes: int = 512 * 1024 * 1024,
        full_retry: float = 60.0,
        alert_settings: Callable[[str], AlertSettings] = lambda _: AlertSettings(),
        hostname: str = "mailmoat.localhost",
    ) -> None:
        self.classifier = classifier
        self.writer = writer
        self.outbound = outbound
        self.metrics = metrics
        self.clock = clock
        self.quarantine_quota = quarantine_quota
        self.notices = notices
        self.lists = lists
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.max_backlog_messages = max_backlog_messages
        self.max_backlog_bytes = max_backlog_bytes
        self.backlog_messages = 0
        self.backlog_bytes = 0
        self.full_retry = full_retry
        self.alert_settings = alert_settings
        self.hostname = hostname
        self.failed: dict[str, int] = {}
        """Queue id -> filtering attempts that failed so far (the message is tried again)."""
        self.retrying: dict[str, asyncio.TimerHandle] = {}
        """Queue id -> the timer that puts it back in the queue for its next attempt."""
        self.waiting: dict[str, asyncio.TimerHandle] = {}
        """Queue id -> the timer that filters it again: viruses the full quarantine refused."""
        self.queue: asyncio.Queue[Spooled] = asyncio.Queue()
        self._tasks = [
            asyncio.create_task(self._work(), name=f"mailmoat-filter-{i}")
            for i in range(concurrency)
        ]

    def submit(self, message: Spooled) -> None:
        self.backlog_messages += 1
        self.backlog_bytes += len(message.raw)
        self.queue.put_nowait(message)

    def has_room(self, size: int = 0) -> bool:
        """Whether one more message of ``size`` bytes fits the backlog limits."""
        return (
            self.backlog_messages < self.max_backlog_messages
            and self.backlog_bytes + size <= self.max_backlog_bytes
        )

    async def _work(self) -> None:
        while True:
            message = await self.queue.get()
            later = False
            try:
                later = await self.process(message) is None
            except Exception:  # a bug here must not stop filtering; the next start retries it
                log.exception("processing failed; message %s stays spooled", message.id)
            finally:
                if not later:
                    self.backlog_messages -= 1
                    self.backlog_bytes -= len(message.raw)
                self.queue.task_done()

    async def process(self, message: Spooled) -> list[Delivery] | None:
        """Filter and record one message; None when filtering failed and is tried again later.

        A failed attempt is retried after ``retry_delay`` doubling, up to
        ``max_attempts``, then the message is held as unscanned. The message
        waits for its next attempt on a timer, not in a filter slot: messages
        that keep failing must not take the slots healthy mail is filtered in
        (32 slots, 3 s of waiting per failing message, and a few per cent of
        failing messages had stalled the whole closed-loop benchmark).
        """
        groups = group_by_domain(message.rcpt_tos)
        try:
            verdicts, subject = await self._filter(message, groups)
        except Exception as exc:
            attempt = self.failed.pop(message.id, 0) + 1
            if attempt >= self.max_attempts:
                return await self._hold_unscanned(message, groups, subject_of(message.raw), exc)
            log.warning(
                "filtering failed (attempt %d of %d), trying again: %r",
                attempt, self.max_attempts, exc, extra={"queue_id": message.id},
            )  # fmt: skip
            self.failed[message.id] = attempt
            delay = self.retry_delay * 2 ** (attempt - 1)
            self.retrying[message.id] = asyncio.get_running_loop().call_later(
                delay, self._again, message
            )
            return None
        self.failed.pop(message.id, None)
        return await self._record(message, groups, verdicts, subject)

    def _again(self, message: Spooled) -> None:
        """Back in the queue for its next attempt (still counted in the backlog)."""
        del self.retrying[message.id]
        self.queue.put_nowait(message)

    async def _hold_unscanned(
        self, message: Spooled, groups: dict[str, tuple[str, ...]], subject: str, exc: Exception
    ) -> list[Delivery]:
        """The fallback when filtering keeps failing: held for an operator, with an event."""
        reason = f"filtering failed {self.max_attempts} times: {exc!r}"[:900]
        now = self.clock()
        outcomes = [
            unscanned(message, domain, rcpts, now, reason=reason, subject=subject)
            for domain, rcpts in groups.items()
        ]
        # No quota here: an unscanned message may be a virus, so it is never tagged through.
        filtered = Filtered(message, now, outcomes, 2**62, self._notices(message))
        recorded = await until_written(lambda: self.writer.record(filtered))
        self.metrics.unscanned()
        log.error("held as unscanned: %s", reason, extra={"queue_id": message.id})
        return self._queue(recorded)

    async def _filter(self, message: Spooled, groups: dict[str, tuple[str, ...]]) -> Classified:
        envelope = Envelope(message.client_ip, message.helo, message.mail_from, message.rcpt_tos)
        outbound = message.direction is Direction.OUTBOUND
        started = time.perf_counter()
        facts = await self.classifier.facts(message.raw, envelope, outbound=outbound)
        self.metrics.enriched(time.perf_counter() - started)
        if self.lists is not None:
            facts = replace(facts, lists=await self.lists.snapshot())
        for result in facts.dnsbl:
            self.metrics.dns_lookup(result.zone, result.seconds, result.status)
        if outbound:
            # The sender's customer policy judges the whole message, for every recipient domain.
            verdicts, subject = await self.classifier.classify(
                message.raw, envelope, [message.rcpt_tos], facts, outbound=True
            )
            return verdicts * len(groups), subject
        return await self.classifier.classify(message.raw, envelope, list(groups.values()), facts)

    async def _record(
        self,
        message: Spooled,
        groups: dict[str, tuple[str, ...]],
        verdicts: list[tuple[Verdict, float]],
        subject: str,
    ) -> list[Delivery]:
        now = self.clock()
        pairs = list(zip(groups.items(), verdicts, strict=True))
        outcomes: list[DomainOutcome] = [
            decide(message, domain, rcpts, verdict, now, subject=subject)
            for (domain, rcpts), (verdict, _) in pairs
        ]
        alerted, plans = await self._alerted(message, outcomes, verdicts, now)
        filtered = Filtered(message, now, alerted, self.quarantine_quota, self._notices(message))
        try:
            recorded = await until_written(lambda: self.writer.record(filtered))
        except QuarantineUnavailable as exc:
            # SPEC 3: what the quarantine cannot take is tagged and delivered instead,
            # except a virus: that stays held, so the message waits for room.
            outcomes = [
                decide(message, domain, rcpts, verdict, now, subject=subject, quarantine_ok=False)
                for (domain, rcpts), (verdict, _) in pairs
            ]
            if any(held is not None for _, _, held in outcomes):
                self._wait_for_room(message, str(exc))
                return []
            log.warning("quarantine unavailable for %s: %s; tagging instead", message.id, exc)
            alerted, plans = await self._alerted(message, outcomes, verdicts, now)
            tagged = Filtered(message, now, alerted)
            recorded = await until_written(lambda: self.writer.record(tagged))
        self._count_alerts(plans)
        if self.waiting.pop(message.id, None) is not None:
            self.metrics.quarantine_waiting(len(self.waiting))
        for (verdict, seconds), (record, _, _) in zip(verdicts, outcomes, strict=True):
            self.metrics.verdict(verdict, seconds, message.direction)
            log.info(
                "filtered",
                extra={
                    "queue_id": message.id,
                    "domain": record.domain,
                    "direction": message.direction,
                    "action": record.action,
                    "outcome": record.outcome,
                    "score": round(record.score, 2),
                    "symbols": list(record.symbols),
                    "filter_seconds": round(seconds, 4),
                    "since_received_seconds": round(now - message.received_at, 4),
                },
            )
        return self._queue(recorded)

    def _wait_for_room(self, message: Spooled, why: str) -> None:
        """Keep a virus the full quarantine refused spooled, and filter it again later.

        The message stays ``spooled`` and leased to this node, so a restart
        (or a node taking over) filters it again too; it is never delivered.
        """
        log.error(
            "quarantine full (%s): virus kept spooled, tried again in %.0f s",
            why, self.full_retry, extra={"queue_id": message.id},
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        self.waiting[message.id] = loop.call_later(self.full_retry, self.submit, message)
        self.metrics.quarantine_full()
        self.metrics.quarantine_waiting(len(self.waiting))

    async def _alerted(
        self,
        message: Spooled,
        outcomes: list[DomainOutcome],
        verdicts: list[tuple[Verdict, float]],
        now: float,
    ) -> tuple[list[DomainOutcome], list[Planned]]:
        """The outcomes with each domain's virus alerts added to its deliveries (SPEC 3 [5]).

        Every address gets at most one alert per message; addresses an earlier
        alert bounced from get none (see ``virus_alerts``). The plans are
        counted once the outcome is stored.
        """
        # Outbound mail is the sending customer's: its settings, and its sender only (SPEC 3).
        sender_domain = domain_of(message.mail_from)
        outbound = message.direction is Direction.OUTBOUND
        settings = [
            self.alert_settings(sender_domain if outbound else record.domain)
            for record, _, _ in outcomes
        ]
        if not any(verdict.is_virus for verdict, _ in verdicts) or not any(
            s.to is not AlertTo.NONE or s.admin is not None for s in settings
        ):
            return outcomes, []
        admins = {s.admin for s in settings if s.admin is not None}
        candidates = sorted({message.mail_from, *message.rcpt_tos, *admins} - {""})
        bounced = await asyncio.to_thread(self.writer.store.read, bounced_alerts, candidates)
        groups = group_by_domain(message.rcpt_tos)
        alerted: list[str] = []
        result: list[DomainOutcome] = []
        plans: list[Planned] = []
        for (record, items, held), (verdict, _), chosen in zip(
            outcomes, verdicts, settings, strict=True
        ):
            planned = plan(
                message, groups.get(record.domain, ()), verdict, record.outcome, chosen,
                hostname=self.hostname, now=now, suspect_sender=sender_suspect(verdict),
                bounced=bounced, already=alerted, direction=message.direction,
            )  # fmt: skip
            alerted += [address for _, item in planned.alerts for address in item.rcpt_tos]
            plans.append(planned)
            result.append((record, [*items, *(item for _, item in planned.alerts)], held))
        return result, plans

    def _count_alerts(self, plans: list[Planned]) -> None:
        for planned in plans:
            for party, _ in planned.alerts:
                self.metrics.virus_alert(party)
            for reason in planned.skipped:
                self.metrics.virus_alert_skipped(reason)

    def _notices(
        self, message: Spooled
    ) -> Callable[[list[str], float], Sequence[NewDelivery]] | None:
        """The account-notice builder for ``message``'s outcome transaction, or None.

        Outbound: held mail's recipients are strangers; only our customers get notices.
        """
        return self.notices if message.direction is Direction.INBOUND else None

    def _queue(self, recorded: Recorded) -> list[Delivery]:
        """Hand what the outcome's transaction queued (account notices too) to delivery."""
        self.outbound.add(recorded.deliveries)
        return recorded.deliveries

    async def drain(self) -> None:
        while True:
            await self.queue.join()
            if not self.retrying:
                return
            await asyncio.sleep(self.retry_delay)

    async def close(self) -> None:
        for timer in [*self.waiting.values(), *self.retrying.values()]:
            timer.cancel()  # still spooled and leased: the next start (or another node) has them
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
