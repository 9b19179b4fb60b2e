"""This node's leases: kept while it works, taken back at start, taken over from dead nodes.

A node leases what it accepts and what it queues (``store/leases.py``).
Every third of a lease this task renews them all in one statement per
table, then claims what no live node holds (leases that ran out, or were
released by a node that stopped) and feeds it to the filter and the
delivery queue. A node busy filtering claims no more messages than it can
start on soon: the rest stays for the other nodes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from store.records import Delivery, Spooled
from store.writer import StoreWriter

log = logging.getLogger("mailmoat.takeover")

BATCH = 500  # rows claimed per statement
OWN_LIMIT = 2**31 - 1  # at start-up every row of ours at once


class Takeover:
    """Renews this node's leases and adopts work whose lease ran out."""

    def __init__(
        self,
        writer: StoreWriter,
        *,
        filter_message: Callable[[Spooled], None],
        adopt: Callable[[list[tuple[str, int]]], None],
        queue_deliveries: Callable[[Iterable[Delivery]], None],
        backlog: Callable[[], int],
        clock: Callable[[], float],
    ) -> None:
        self.writer = writer
        self.store = writer.store
        self.filter_message = filter_message
        self.adopt = adopt
        self.queue_deliveries = queue_deliveries
        self.backlog = backlog
        self.clock = clock
        self.interval = self.store.lease.seconds / 3

    async def claim(self, *, own: bool = False) -> tuple[int, int]:
        """Claim unleased work (``own``: also ours from a previous run); returns (msgs, dlvs).

        Our own rows are all taken at once: left unclaimed they would be renewed
        by us forever and never taken by anyone.
        """
        messages = deliveries = 0
        if own:
            # Ours stay ours whatever their expiry, so they are claimed in one statement
            # (a second batch would find the first again); only ids and sizes are read,
            # and ``adopt`` streams the bodies in as the filter backlog has room.
            backlog = await self.writer.call(self.store.claim_unfiltered_ids, self.clock())
            self.adopt(backlog)
            messages = len(backlog)
            claimed = await self.writer.call(
                self.store.claim_deliveries, self.clock(), OWN_LIMIT, own=True
            )
            self.queue_deliveries(claimed)
            deliveries = len(claimed)
        else:
            while self.backlog() < BATCH:
                found = await self.writer.call(self.store.claim_unfiltered, self.clock(), BATCH)
                for message in found:
                    self.filter_message(message)
                messages += len(found)
                if len(found) < BATCH:
                    break
            while True:
                claimed = await self.writer.call(self.store.claim_deliveries, self.clock(), BATCH)
                self.queue_deliveries(claimed)
                deliveries += len(claimed)
                if len(claimed) < BATCH:
                    break
        if messages or deliveries:
            log.info("claimed", extra={"unfiltered": messages, "deliveries": deliveries})
        return messages, deliveries

    async def renew(self) -> int:
        return await self.writer.call(self.store.renew_leases, self.clock())

    async def run(self) -> None:
        """Renew, then adopt, every third of a lease, until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.renew()
                await self.claim()
            except Exception:  # the store may be briefly away; leases outlast a missed round
                log.exception("lease round failed; retrying in %.0f s", self.interval)

    async def release(self) -> None:
        """Hand unfinished work to the other nodes (graceful stop)."""
        freed = await self.writer.call(self.store.release_leases)
        if freed:
            log.info("released", extra={"rows": freed})
