"""The delivery queue: hand filtered mail to the customer's server, retry, bounce, expire.

Deliveries wait in a heap ordered by their next attempt; a bounded number
are in flight at once. Outcomes follow SPEC 2.7 and RFC 5321: 4xx and
connection failures are retried with exponential backoff until ``max_age``
(7 days), then the delivery expires with a record of why; 5xx fails at once.
Either failure sends the sender a DSN (RFC 3464), except for spam (forged
senders: backscatter) and bounces themselves.

Every pending delivery moves on schedule whatever goes wrong: an unexpected
exception counts as a failed attempt (retried, then expired; bounced at once
when the address itself cannot be written), and bookkeeping writes wait out
store faults in-process (``until_stored``), so a delivery the customer's
server already took is recorded, not sent again after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from filters.lists import domain_of
from service.config import DeliveryConfig
from service.deferrals import DeferralSummary
from service.delivery import UTF8_REQUIRED, SessionPool, deliver
from service.dsn import NO_REPLY, Failure, build_dsn, should_notify
from service.metrics import AttemptReason, AttemptResult, GatewayMetrics
from service.rewrite import render
from service.routing import NoRoute, Router, RouteUnavailable
from service.storeretry import until_stored, until_written
from store import backoff
from store.records import Delivery, DeliveryKind, DeliveryState, Finished, NewDelivery
from store.writer import StoreWriter

log = logging.getLogger("mailmoat.delivery")


class DeliveryQueue:
    """Pending deliveries of this worker, attempted when due."""

    def __init__(
        self,
        writer: StoreWriter,
        router: Router,
        metrics: GatewayMetrics,
        config: DeliveryConfig,
        *,
        hostname: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.writer = writer
        self.router = router
        self.metrics = metrics
        self.config = config
        self.hostname = hostname
        self.clock = clock
        self._heap: list[tuple[float, int, Delivery]] = []
        self._pending: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(config.concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self.sessions = SessionPool()
        self.deferrals = DeferralSummary(clock)

    # --- queue state ----------------------------------------------------------------

    def add(self, deliveries: Iterable[Delivery]) -> None:
        for d in deliveries:
            heapq.heappush(self._heap, (d.next_attempt_at, d.id, d))
            self._pending[d.item.domain] += 1
        self._wake.set()

    def lengths(self) -> dict[str, int]:
        """Deliveries not yet done, per destination domain (in flight included)."""
        return {domain: n for domain, n in self._pending.items() if n > 0}

    def scheduled(self) -> set[int]:
        """Ids of the deliveries waiting in the heap for their next attempt."""
        return {d.id for _, _, d in self._heap}

    def _done(self, delivery: Delivery) -> None:
        self._pending[delivery.item.domain] -= 1

    # --- running --------------------------------------------------------------------

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="mailmoat-delivery")

    async def _run(self) -> None:
        while True:
            now = self.clock()
            while self._heap and self._heap[0][0] <= now:
                _, _, delivery = heapq.heappop(self._heap)
                await self._slots.acquire()
                task = asyncio.create_task(self._attempt_guarded(delivery))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            timeout = max(0.0, self._heap[0][0] - self.clock()) if self._heap else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _attempt_guarded(self, delivery: Delivery) -> None:
        try:
            await self.attempt(delivery)
        except Exception as exc:  # a bug or a surprise: it still counts as an attempt
            log.exception("delivery %s failed unexpectedly", delivery.id)
            await self._unexpected(delivery, exc)
        finally:
            self._slots.release()

    async def _unexpected(self, delivery: Delivery, exc: Exception) -> None:
        """Schedule what follows an exception, so no delivery is left pending with no future."""
        permanent = isinstance(exc, (ValueError, UnicodeError))  # the address cannot be sent
        status = "5.1.3" if permanent else "4.3.0"
        reason = _printable(f"local error: {type(exc).__name__}: {exc}"[:400])
        rcpts = delivery.item.rcpt_tos
        failures = [Failure(_printable(r), status, NO_REPLY, reason) for r in rcpts]
        try:
            if permanent:
                await self._fail(
                    delivery, b"", failures, DeliveryState.BOUNCED, AttemptReason.LOCAL
                )
            else:
                await self._defer(delivery, b"", failures, AttemptReason.LOCAL)
        except Exception:  # even the bookkeeping failed: try again later, from memory
            log.exception("delivery %s: could not record the failure", delivery.id)
            due = self.clock() + self.config.retry_cap
            heapq.heappush(self._heap, (due, delivery.id, replace(delivery, next_attempt_at=due)))
            self._wake.set()

    async def attempt(self, delivery: Delivery) -> None:
        """One try at ``delivery``; records the outcome and schedules what follows."""
        item = delivery.item
        if item.mail_from.strip() == "<>":  # rows stored before the edge normalised it
            item = replace(item, mail_from="")
            delivery = replace(delivery, item=item)
        body = delivery.raw
        if body is None:  # a read: off the writer thread, beside it (WAL, MVCC)
            body = await asyncio.to_thread(self.writer.store.delivery_body, delivery)
        data = render(body, item.prefix, item.subject_tag)
        unroutable: NoRoute | RouteUnavailable | None = None
        try:
            routes = await self.router.routes(item.domain)
        except (NoRoute, RouteUnavailable) as exc:
            unroutable = exc
        if not await self._still_ours(delivery):
            return
        if isinstance(unroutable, NoRoute):
            failures = [Failure(r, "5.1.2", NO_REPLY, str(unroutable)) for r in item.rcpt_tos]
            await self._fail(
                delivery, data, failures, DeliveryState.BOUNCED, AttemptReason.NO_ROUTE
            )
            return
        if unroutable is not None:
            temporary = [Failure(r, "4.4.3", NO_REPLY, str(unroutable)) for r in item.rcpt_tos]
            await self._defer(delivery, data, temporary, AttemptReason.ROUTE_UNAVAILABLE)
            return
        outcome = await deliver(
            routes,
            item.mail_from,
            item.rcpt_tos,
            data,
            helo=self.hostname,
            timeout=self.config.timeout,
            pool=self.sessions,
        )
        permanent, temporary = list(outcome.permanent), list(outcome.temporary)
        if outcome.delivered and item.kind in (DeliveryKind.DELIVER, DeliveryKind.REDIRECT):
            self.metrics.delivered(item.domain, self.clock() - delivery.received_at)
        if temporary:
            if permanent:
                await self._notify(delivery, data, permanent)
            await self._defer(delivery, data, temporary, _reason(temporary))
        elif permanent:
            state = DeliveryState.DELIVERED if outcome.delivered else DeliveryState.BOUNCED
            await self._fail(delivery, data, permanent, state, _reason(permanent))
        else:
            done = Finished(delivery, DeliveryState.DELIVERED, self.clock())
            await until_written(lambda: self.writer.finish(done))
            self._done(delivery)
            self.metrics.attempt(item.domain, AttemptResult.DELIVERED, AttemptReason.OK)
            self.deferrals.tick()
            log.debug(
                "delivered",
                extra={
                    "delivery": delivery.id,
                    "queue_id": delivery.message_id,
                    "domain": item.domain,
                    "attempts": delivery.attempts + 1,
                },
            )

    async def _still_ours(self, delivery: Delivery) -> bool:
        """Renew the delivery's lease right before the attempt; drop it if another node has it.

        A node that stalled past its lease (a long pause, a store outage) may
        have lost the delivery to another node, which attempts it now: trying
        it here too would deliver it twice. The usual case, leases renewed on time, is
        answered here on the loop: a hop through the writer thread would queue every
        attempt behind the store's pending writes.
        """
        store = self.writer.store
        if store.leases_fresh(self.clock()):
            return True
        if await until_stored(self.writer, store.keep_delivery, delivery, self.clock()):
            return True
        self._done(delivery)
        log.info(
            "lease lost: another node delivers it",
            extra={"delivery": delivery.id, "queue_id": delivery.message_id},
        )
        return False

    async def _defer(
        self,
        delivery: Delivery,
        data: bytes,
        temporary: Sequence[Failure],
        reason: AttemptReason,
    ) -> None:
        now = self.clock()
        error = _printable("; ".join(f"{f.recipient}: {f.code} {f.message}" for f in temporary))
        if backoff.expired(delivery.created_at, now, self.config.max_age):
            self.metrics.expired(delivery.item.domain)
            await self._fail(
                delivery, data, temporary, DeliveryState.EXPIRED, AttemptReason.MAX_AGE
            )
            return
        self.metrics.deferred(delivery.item.domain, reason)
        self.deferrals.note(delivery.item.domain, reason)
        attempts = delivery.attempts + 1
        delay = backoff.next_delay(attempts, base=self.config.retry_base, cap=self.config.retry_cap)
        left = tuple(f.recipient for f in temporary)
        await until_stored(
            self.writer, self.writer.store.retry_later, delivery, now, now + delay, error, left
        )
        again = replace(
            delivery,
            raw=None,  # a retry may be hours away: read the bytes again then, not hold them
            item=replace(delivery.item, rcpt_tos=left),
            attempts=attempts,
            next_attempt_at=now + delay,
        )
        heapq.heappush(self._heap, (again.next_attempt_at, again.id, again))
        self._wake.set()
        # Debug: a stuck downstream defers every message every retry (thousands of lines);
        # ``deferrals`` sums them in one info line a minute, beside the attempts counter.
        log.debug(
            "deferred",
            extra={
                "delivery": delivery.id,
                "queue_id": delivery.message_id,
                "retry_in_seconds": round(delay, 1),
                "error": error,
            },
        )

    async def _fail(
        self,
        delivery: Delivery,
        data: bytes,
        failures: Sequence[Failure],
        state: DeliveryState,
        reason: AttemptReason,
    ) -> None:
        if state is DeliveryState.BOUNCED:
            self.metrics.bounced(delivery.item.domain, reason)
        self.deferrals.tick()
        error = _printable("; ".join(f"{f.recipient}: {f.code} {f.message}" for f in failures))
        follow_up = self._dsn(delivery, data, failures)
        done = Finished(delivery, state, self.clock(), error, follow_up)
        created = await until_written(lambda: self.writer.finish(done))
        self._done(delivery)
        self.add(created)
        log.warning(
            state,
            extra={
                "delivery": delivery.id,
                "queue_id": delivery.message_id,
                "error": error,
                "dsn": bool(follow_up),
            },
        )

    async def _notify(self, delivery: Delivery, data: bytes, failures: Sequence[Failure]) -> None:
        """DSN for recipients refused for good while others are still being retried."""
        follow_up = self._dsn(delivery, data, failures)
        if follow_up:
            created = await until_stored(
                self.writer, self.writer.store.add_follow_ups, delivery, self.clock(), follow_up
            )
            self.add(created)

    def _dsn(
        self, delivery: Delivery, data: bytes, failures: Sequence[Failure]
    ) -> list[NewDelivery]:
        item = delivery.item
        if item.kind is DeliveryKind.DSN or not should_notify(item.mail_from, item.is_spam):
            return []
        report = build_dsn(
            original=data,
            mail_from=item.mail_from,
            failures=failures,
            reporting_mta=self.hostname,
            arrival=datetime.fromtimestamp(delivery.received_at, UTC),
            now=datetime.fromtimestamp(self.clock(), UTC),
        )
        sender = item.mail_from.strip("<>")
        return [NewDelivery(DeliveryKind.DSN, domain_of(sender), "", (sender,), body=report)]

    async def close(self) -> None:
        """Stop starting deliveries; cancel those in flight (they stay pending in the store)."""
        tasks = [t for t in (self._runner, *self._in_flight) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.sessions.close()
        self.deferrals.flush()


def _printable(text: str) -> str:
    """``text`` with undecodable bytes (lone surrogates) escaped, so it can be stored."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _reason(failures: Sequence[Failure]) -> AttemptReason:
    """``reply`` when the next hop answered (a reply code, or an EHLO without SMTPUTF8)."""
    answered = any(f.code != NO_REPLY or f.status == UTF8_REQUIRED for f in failures)
    return AttemptReason.REPLY if answered else AttemptReason.CONNECTION
