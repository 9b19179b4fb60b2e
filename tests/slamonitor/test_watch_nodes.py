"""Two gateway nodes on one PostgreSQL: one queue watch and one availability probe, not two.

Each node is what the gateway builds: its own store (own lease owner) and
writer on the shared database, its watchers asking the job lease before each
round. The clock is virtual; the customer's server is a real SMTP sink that
is stopped, so the watch probes it, fails, and mails the customer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from slamonitor.availability import AvailabilityProbe
from slamonitor.outbreaks import LAG, OutbreakWatch
from slamonitor.periods import PERIOD
from slamonitor.queues import SERVER_DOWN, QueueWatch, RisingRule
from store.leases import Job, Lease
from store.schema import job_leases
from store.sla_tables import alerts, availability, notices
from store.store import Store
from store.writer import StoreWriter
from tests.slamonitor.conftest import NOV, event, insert
from tests.slamonitor.test_queues import Clock
from tests.smtpsink import RecordingSink

LEASE = 60.0
INTERVAL = 30.0


class Node:
    """One gateway node's watchers on the shared store, and the mail it sent the customer."""

    def __init__(
        self, name: str, url: str, clock: Clock, queue: dict[str, int], sink: RecordingSink
    ) -> None:
        self.name = name
        self.clock = clock
        self.store = Store(url, lease=Lease(name, LEASE))
        self.writer = StoreWriter(self.store)
        self.sent: list[str] = []
        self.watch = QueueWatch(
            self.writer.write, lambda: queue, {"acme.test": (sink.host, sink.port)}, self.notify,
            clock=clock, interval=INTERVAL, rule=RisingRule(samples=3, floor=10),
            probe_timeout=5.0, holds=lambda: self.holds(Job.QUEUE_WATCH),
        )  # fmt: skip
        self.outbreaks = OutbreakWatch(
            self.writer.write, {"acme.test": "it@acme.test"}, self.mail, clock=clock,
            min_messages=200, holds=lambda: self.holds(Job.OUTBREAKS),
        )  # fmt: skip
        self.probe = AvailabilityProbe(
            self.writer.write, sink.host, sink.port, clock=clock, interval=INTERVAL,
            timeout=5.0, holds=lambda: self.holds(Job.AVAILABILITY),
        )  # fmt: skip

    async def holds(self, job: Job) -> bool:
        """As the gateway asks: take or keep the job's lease on this node's store."""
        return await self.writer.call(self.store.hold_job, job, self.clock())

    async def notify(self, domain: str, subject: str, body: str) -> None:
        self.sent.append(subject)

    async def mail(self, to: str, subject: str, body: str) -> None:
        self.sent.append(subject)


@pytest.fixture
async def cluster(
    migrated_postgres_url: str, sink: RecordingSink
) -> AsyncIterator[tuple[Clock, dict[str, int], list[Node]]]:
    clock, queue = Clock(), {"acme.test": 0}
    nodes = [Node(name, migrated_postgres_url, clock, queue, sink) for name in ("a", "b")]
    yield clock, queue, nodes
    for node in nodes:
        await node.writer.close()
        node.store.close()


async def test_one_node_alerts_and_the_survivor_takes_over_without_repeating(
    cluster: tuple[Clock, dict[str, int], list[Node]], sink: RecordingSink
) -> None:
    clock, queue, (a, b) = cluster
    sink.stop()  # the customer's server refuses connections: a rising queue means an alert

    async def rounds(nodes: list[Node], *lengths: int) -> list[str]:
        ran = []
        for length in lengths:
            clock.now += INTERVAL
            queue["acme.test"] = length
            for node in nodes:
                if await node.watch.round():
                    ran.append(node.name)
        return ran

    assert await rounds([a, b], 11, 12, 13, 14) == ["a"] * 4  # b never samples while a holds
    assert (a.sent, b.sent) == ([a.sent[0]], [])  # the customer is told once, by a
    assert "acme.test" in a.sent[0]
    # a dies (no more rounds, no renewal): b waits out a's lease, then takes the watch over
    # from where a left it: the server is still down, so nobody tells the customer again.
    assert await rounds([b], 15, 16, 17, 18) == ["b", "b"]
    assert b.watch.firing[(SERVER_DOWN, "acme.test")] is True
    assert b.sent == []
    sink.start()
    await rounds([b], 19)  # the server answers: b resolves the alert a raised
    states = a.store.read(
        lambda c: c.execute(select(alerts.c.alert, alerts.c.state).order_by(alerts.c.id)).all()
    )
    assert [tuple(s) for s in states if s.alert == SERVER_DOWN] == [
        (SERVER_DOWN, "firing"),
        (SERVER_DOWN, "resolved"),
    ]


async def test_one_availability_sample_per_interval_however_many_nodes(
    cluster: tuple[Clock, dict[str, int], list[Node]],
) -> None:
    clock, _, (a, b) = cluster
    for _ in range(3):
        clock.now += INTERVAL
        assert [await a.probe.round(), await b.probe.round()] == [True, None]
    for _ in range(3):  # a is gone: b probes once a's lease has run out
        clock.now += INTERVAL
        await b.probe.round()
    rows = a.store.read(lambda c: c.execute(select(availability.c.at)).scalars().all())
    times = [t - NOV for t in rows]
    assert times == [30.0, 60.0, 90.0, 180.0]  # a renewed at 90 until 150; b from 180


async def test_an_outbreak_is_announced_by_one_node(
    cluster: tuple[Clock, dict[str, int], list[Node]],
) -> None:
    clock, _, (a, b) = cluster
    rows = [
        event(f"v{i}", NOV + i, domain="acme.test", category="virus" if i < 5 else "clean")
        for i in range(250)
    ]  # 5 viruses in 250: above 1 in 200
    insert(a.store.engine, rows)
    clock.now = NOV + PERIOD + LAG  # the period is over: both nodes judge it at once
    announced = await asyncio.gather(a.outbreaks.round(), b.outbreaks.round())
    assert sum(p is not None for p in announced) == 1
    assert sorted(a.sent + b.sent) == ["Virus outbreak declared"]
    posted = a.store.read(lambda c: c.execute(select(notices.c.kind)).scalars().all())
    holder = a.store.read(
        lambda c: c.execute(
            select(job_leases.c.owner).where(job_leases.c.name == Job.OUTBREAKS)
        ).scalar_one()
    )
    assert posted == ["emergency"]
    assert (holder, announced[0] is not None) in (("a", True), ("b", False))
