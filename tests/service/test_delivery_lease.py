"""A delivery's lease is checked right before each attempt, on a virtual clock.

Node ``a`` queued the deliveries, then stalled past its lease (no renewal).
Node ``b`` claimed one of them meanwhile: ``a`` must not attempt that one (it
would deliver twice), but may still attempt the one nobody claimed, after
renewing its lease on it. Real SMTP to a recording sink; real store files.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy import select

from service.config import DeliveryConfig
from service.metrics import GatewayMetrics
from service.outbound import DeliveryQueue
from service.routing import Router
from store.leases import Lease
from store.records import Delivery, DeliveryKind, DeliveryState
from store.schema import deliveries
from store.store import Store
from store.writer import StoreWriter
from tests.smtpsink import RecordingSink

T0 = 1_800_000_000.0
LEASE = 60.0
MAIL = b"From: postmaster@mx.mailmoat.test\r\nTo: ops@example.test\r\nSubject: x\r\n\r\nhi\r\n"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _row(store: Store, delivery: Delivery) -> tuple[str, str | None]:
    query = select(deliveries.c.state, deliveries.c.lease_owner).where(
        deliveries.c.id == delivery.id
    )
    row = store.read(lambda c: c.execute(query).one())
    return row.state, row.lease_owner


async def test_a_stalled_node_skips_what_another_took_and_delivers_the_rest(
    tmp_path: Path, sink: RecordingSink
) -> None:
    a = Store(tmp_path / "gateway.db", lease=Lease("a", LEASE))
    b = Store(tmp_path / "gateway.db", lease=Lease("b", LEASE))
    a.renew_leases(T0)  # a was alive and renewing at T0
    (taken,) = a.submit(MAIL, ["ops@example.test"], T0, DeliveryKind.ALERT)
    (kept,) = a.submit(MAIL, ["ops@example.test"], T0, DeliveryKind.ALERT)
    clock = Clock()
    writer = StoreWriter(a)
    metrics = GatewayMetrics(
        registry=CollectorRegistry(), domains=["example.test"], queue_lengths=lambda: {}
    )
    queue = DeliveryQueue(
        writer, Router({"example.test": (sink.host, sink.port)}), metrics,
        DeliveryConfig(timeout=10.0), hostname="mx.mailmoat.test", clock=clock,
    )  # fmt: skip
    queue.add([taken, kept])
    try:
        clock.now = T0 + LEASE + 1  # a stalled: its leases ran out unrenewed
        claimed = b.claim_deliveries(clock.now, 1)
        assert [d.id for d in claimed] == [taken.id]  # b now attempts this one
        await queue.attempt(taken)
        assert sink.received == []  # a did not try: b holds it
        assert _row(a, taken) == (DeliveryState.PENDING, "b")
        assert queue.lengths() == {"example.test": 1}  # dropped from a's queue, not rescheduled
        await queue.attempt(kept)  # nobody claimed it: still a's, renewed, then delivered
        (got,) = await sink.wait_for(1, 10.0)
        assert got.rcpt_tos == ("ops@example.test",)
        assert _row(a, kept)[0] == DeliveryState.DELIVERED
        assert b.claim_deliveries(clock.now + 1, 10) == []  # nothing left for b to take
    finally:
        await writer.close()
        a.close()
        b.close()


def test_a_live_nodes_attempt_needs_no_extra_write(tmp_path: Path) -> None:
    store = Store(tmp_path / "gateway.db", lease=Lease("a", LEASE))
    store.renew_leases(T0)
    (delivery,) = store.submit(MAIL, ["ops@example.test"], T0 + 1, DeliveryKind.ALERT)
    # Within the renewal's margin the lease is known to hold; the row is not touched.
    assert store.keep_delivery(delivery, T0 + LEASE / 2)
    until = store.read(
        lambda c: c.execute(
            select(deliveries.c.lease_until).where(deliveries.c.id == delivery.id)
        ).scalar_one()
    )
    assert until == T0 + 1 + LEASE
    # Past it (the node stalled), the row's own lease is renewed from the check's time.
    assert store.keep_delivery(delivery, T0 + LEASE + 5)
    until = store.read(
        lambda c: c.execute(
            select(deliveries.c.lease_until).where(deliveries.c.id == delivery.id)
        ).scalar_one()
    )
    assert until == T0 + LEASE + 5 + LEASE
    store.close()
