"""Queue alerts and the availability probe against a real SMTP server that can be stopped."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiosmtplib
import pytest
from sqlalchemy import Engine, select

from slamonitor import availability, faults
from slamonitor.availability import AvailabilityProbe
from slamonitor.exclusions import Kind, State, Window
from slamonitor.periods import Month
from slamonitor.probe import Cause, NoServer, Servers, probe_cause, smtp_probe
from slamonitor.queues import QUEUE_RISING, SERVER_DOWN, QueueWatch, RisingRule
from store.sla_tables import alerts, probes, queue_samples
from store.sla_tables import availability as availability_table
from store.store import Store
from store.writer import StoreWriter
from tests.slamonitor.conftest import NOV
from tests.smtpsink import RecordingSink


@pytest.fixture
async def writer(store: Store) -> AsyncIterator[StoreWriter]:
    """The store's async write facade, as the gateway hands it to the SLA monitor."""
    running = StoreWriter(store)
    running.start()
    yield running
    await running.close()


class Clock:
    def __init__(self) -> None:
        self.now = NOV

    def __call__(self) -> float:
        return self.now


class Harness:
    """A QueueWatch on virtual time, with queue lengths and notifications the test controls."""

    def __init__(self, writer: StoreWriter, sink: RecordingSink) -> None:
        self.clock = Clock()
        self.queue: dict[str, int] = {}
        self.sent: list[tuple[str, str, str]] = []
        self.watch = QueueWatch(
            writer.write,
            lambda: self.queue,
            {"acme.test": (sink.host, sink.port)},
            self.notify,
            clock=self.clock,
            rule=RisingRule(samples=3, floor=10),
            probe_timeout=5.0,
        )

    async def notify(self, domain: str, subject: str, body: str) -> None:
        self.sent.append((domain, subject, body))

    async def samples(self, *lengths: int) -> None:
        for n in lengths:
            self.queue["acme.test"] = n
            self.clock.now += 30
            await self.watch.sample_once()


@pytest.mark.parametrize(
    ("lengths", "rising"),
    [
        ((11, 12, 13), True),
        ((9, 10, 11), True),
        ((8, 9, 10), False),
        ((12, 12, 13), False),
        ((20, 21), False),
    ],
)
def test_rising_rule(lengths: tuple[int, ...], rising: bool) -> None:
    from collections import deque

    assert RisingRule(samples=3, floor=10).holds(deque(lengths)) is rising


async def test_rising_queue_with_a_healthy_server_alerts_without_mail(
    engine: Engine, writer: StoreWriter, sink: RecordingSink
) -> None:
    h = Harness(writer, sink)
    await h.samples(11, 12)
    assert not h.watch.firing.get((QUEUE_RISING, "acme.test"))
    await h.samples(13)
    assert h.watch.firing[(QUEUE_RISING, "acme.test")] is True
    assert h.watch.firing[(SERVER_DOWN, "acme.test")] is False
    assert h.sent == []
    with engine.connect() as conn:
        [probe] = conn.execute(select(probes)).all()
        assert probe.ok and " 250 " in probe.detail
        assert conn.execute(select(queue_samples.c.length)).scalars().all() == [11, 12, 13]


async def test_server_down_is_probed_notified_once_and_resolved(
    engine: Engine, writer: StoreWriter, sink: RecordingSink
) -> None:
    h = Harness(writer, sink)
    sink.stop()
    await h.samples(11, 12, 13)
    assert h.watch.firing[(SERVER_DOWN, "acme.test")] is True
    [(domain, subject, body)] = h.sent
    assert domain == "acme.test" and "acme.test" in subject and "13 messages" in body
    await h.samples(14, 15)  # still down: probed again, but the customer is told once
    assert len(h.sent) == 1
    sink.start()
    await h.samples(15)  # no longer rising; the server answers again
    assert h.watch.firing[(SERVER_DOWN, "acme.test")] is False
    assert h.watch.firing[(QUEUE_RISING, "acme.test")] is False
    with engine.connect() as conn:
        states = conn.execute(select(alerts.c.alert, alerts.c.state).order_by(alerts.c.id)).all()
        oks = conn.execute(select(probes.c.ok).order_by(probes.c.id)).scalars().all()
    assert [tuple(s) for s in states] == [
        (QUEUE_RISING, "firing"),
        (SERVER_DOWN, "firing"),
        (QUEUE_RISING, "resolved"),
        (SERVER_DOWN, "resolved"),
    ]
    assert oks == [False, False, False, True]


async def test_run_loop_sleeps_between_samples(
    engine: Engine, writer: StoreWriter, sink: RecordingSink
) -> None:
    h = Harness(writer, sink)
    h.queue["acme.test"] = 1
    slept: list[float] = []

    async def sleeper(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            raise asyncio.CancelledError

    h.watch.sleep = sleeper
    with pytest.raises(asyncio.CancelledError):
        await h.watch.run()
    assert slept == [30.0, 30.0, 30.0]
    with engine.connect() as conn:
        assert len(conn.execute(select(queue_samples)).all()) == 3


async def test_availability_probe_records_up_and_down(
    engine: Engine, writer: StoreWriter, sink: RecordingSink
) -> None:
    clock = Clock()
    probe = AvailabilityProbe(writer.write, sink.host, sink.port, clock=clock, timeout=5.0)
    for _ in range(3):
        clock.now += 60
        assert await probe.probe_once() is True
    sink.stop()
    clock.now += 60
    assert await probe.probe_once() is False
    assert probe.last_up is False
    with engine.connect() as conn:
        result = availability.measure(conn, Month(2026, 11), None, [])
    assert (result.samples, result.up, result.share) == (4, 3, 0.75)


async def test_a_refusing_server_proposes_a_customer_fault_until_it_answers(
    engine: Engine, writer: StoreWriter, sink: RecordingSink
) -> None:
    h = Harness(writer, sink)
    sink.stop()
    await h.samples(11, 12, 13)  # third sample: rising, probed, refused
    failed_at = h.clock.now
    await h.samples(14)
    with engine.connect() as conn:
        [proposed] = faults.listing(conn, None, State.PROPOSED)
    assert (proposed.kind, proposed.domain) == (Kind.CUSTOMER_FAULT, "acme.test")
    assert (proposed.start_at, proposed.end_at) == (failed_at, failed_at + 30)
    assert "refused" in proposed.reason and proposed.created_by == faults.PROPOSER
    sink.start()
    await h.samples(15)  # answers again: the window closes at this probe
    await h.samples(16)  # later samples leave it alone
    with engine.connect() as conn:
        [closed] = faults.listing(conn, None, None)
    assert closed.end_at == failed_at + 60 and closed.state == State.PROPOSED


async def test_a_healthy_server_proposes_nothing(
    engine: Engine, writer: StoreWriter, sink: RecordingSink
) -> None:
    h = Harness(writer, sink)
    await h.samples(11, 12, 13, 14)
    with engine.connect() as conn:
        assert faults.listing(conn, None, None) == []


async def test_a_server_greeting_as_this_gateway_is_a_mail_loop(sink: RecordingSink) -> None:
    looped = await smtp_probe(sink.host, sink.port, timeout=5.0, own_hostname="SINK.test")
    assert (looped.ok, looped.cause) == (False, Cause.LOOP)
    assert (await smtp_probe(sink.host, sink.port, timeout=5.0, own_hostname="gw.test")).ok


async def test_probe_failures_are_classified(sink: RecordingSink) -> None:
    sink.stop()
    refused = await smtp_probe(sink.host, sink.port, timeout=5.0)
    assert (refused.ok, refused.cause) == (False, Cause.REFUSED)
    # A name that does not resolve, as aiosmtplib reports it (no lookup leaves the machine).
    unresolved = aiosmtplib.SMTPConnectError("Error connecting to mx.acme.test on port 25")
    unresolved.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert probe_cause(unresolved) == Cause.DNS
    assert probe_cause(aiosmtplib.SMTPResponseException(554, "go away")) == Cause.REJECTED


async def test_a_restarted_watch_goes_on_with_the_open_proposal(
    engine: Engine, writer: StoreWriter, sink: RecordingSink
) -> None:
    h = Harness(writer, sink)
    sink.stop()
    await h.samples(11, 12, 13)
    restarted = Harness(writer, sink)  # a new process: nothing in memory
    restarted.clock.now = h.clock.now
    await restarted.samples(14, 15, 16)
    with engine.connect() as conn:
        [window] = faults.listing(conn, None, None)
    assert window.end_at == restarted.clock.now


def test_availability_counts_the_gateways_own_outage(engine: Engine) -> None:
    """The probe dies with the gateway: ten minutes without samples are ten failed minutes."""
    start = Month(2026, 11).start + 3600
    times = [start + 60 * i for i in range(5)] + [start + 60 * (4 + 10 + i) for i in range(5)]
    with engine.begin() as conn:
        for at in times:
            conn.execute(availability_table.insert().values(at=at, up=True, detail="ok"))
    with engine.connect() as conn:
        result = availability.measure(conn, Month(2026, 11), None, [])
        # A maintenance window over the outage takes the missing minutes out, not in.
        window = Window(Kind.MAINTENANCE, start + 300, start + 840, None, "planned")
        excused = availability.measure(conn, Month(2026, 11), None, [window])
    assert (result.samples, result.up, result.missing) == (19, 10, 9)
    assert (excused.samples, excused.up, excused.missing) == (10, 10, 0)


def mx_watch(writer: StoreWriter, clock: Clock, servers: Servers) -> QueueWatch:
    """A watch for a domain with no configured route: delivered by MX, probed the same way."""
    return QueueWatch(
        writer.write, lambda: {"mx.test": 10 + int((clock.now - NOV) / 30)}, {},
        lambda *_: asyncio.sleep(0), clock=clock, rule=RisingRule(samples=3, floor=10),
        probe_timeout=5.0, servers=servers,
    )  # fmt: skip


async def rising(watch: QueueWatch, clock: Clock) -> None:
    for _ in range(3):
        clock.now += 30
        await watch.sample_once()


async def test_an_mx_routed_domain_is_probed_at_its_mx_hosts_in_order(
    engine: Engine, writer: StoreWriter, sink: RecordingSink
) -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    asked: list[str] = []

    async def servers(domain: str) -> list[tuple[str, int]]:
        asked.append(domain)
        return [("127.0.0.1", dead.getsockname()[1]), (sink.host, sink.port)]

    clock = Clock()
    watch = mx_watch(writer, clock, servers)
    try:
        await rising(watch, clock)
        assert watch.firing[(SERVER_DOWN, "mx.test")] is False  # the second MX answered
        sink.stop()
        watch = mx_watch(writer, clock, servers)  # a fresh watch sees the queue rise again
        await rising(watch, clock)
    finally:
        dead.close()
    assert asked and set(asked) == {"mx.test"}
    with engine.connect() as conn:
        [proposed] = faults.listing(conn, None, State.PROPOSED)
    assert (proposed.kind, proposed.domain) == (Kind.CUSTOMER_FAULT, "mx.test")
    assert "refused" in proposed.reason


async def test_an_mx_domain_whose_dns_names_no_server_proposes_a_dns_fault(
    engine: Engine, writer: StoreWriter
) -> None:
    async def servers(domain: str) -> list[tuple[str, int]]:
        raise NoServer(f"{domain}: no such domain")

    clock = Clock()
    watch = mx_watch(writer, clock, servers)
    await rising(watch, clock)
    assert watch.firing[(SERVER_DOWN, "mx.test")] is True
    with engine.connect() as conn:
        [proposed] = faults.listing(conn, None, State.PROPOSED)
    assert proposed.domain == "mx.test" and "(dns)" in proposed.reason
