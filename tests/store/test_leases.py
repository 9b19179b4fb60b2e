"""Leases on a virtual clock: expiry, takeover counted, release, renewal, jobs with one holder."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import select

from store.leases import Job, Lease
from store.records import DeliveryKind, EventRecord, NewDelivery, Outcome, Spooled
from store.schema import deliveries
from store.store import Store

T0 = 10_000.0
LEASE = 60.0


def _spool(store: Store, n: int, at: float = T0) -> list[Spooled]:
    batch = [
        Spooled(f"M{store.lease.owner}{at:.0f}-{i}", at, "a@s.test", ("u@d.test",), b"x")
        for i in range(n)
    ]
    store.spool(batch)
    return batch


def _filter(store: Store, message: Spooled, at: float) -> None:
    record = EventRecord("d.test", "deliver", "clean", Outcome.DELIVERED, 0.0, (), (), 1)
    item = NewDelivery(DeliveryKind.DELIVER, "d.test", "a@s.test", ("u@d.test",))
    store.record_filtered(message, at, [(record, [item], None)])


def _reclaimed(store: Store) -> list[int]:
    query = select(deliveries.c.reclaimed).order_by(deliveries.c.id)
    return list(store.read(lambda c: list(c.execute(query).scalars())))


def test_a_silent_nodes_work_is_claimed_only_after_its_lease_runs_out(
    store_location: Path | str,
) -> None:
    a = Store(store_location, lease=Lease("a", LEASE))
    b = Store(store_location, lease=Lease("b", LEASE))
    (message,) = _spool(a, 1)
    _filter(a, message, T0 + 1)
    (second,) = _spool(a, 1, at=T0 + 2)
    assert b.claim_unfiltered(T0 + LEASE, 10) == []  # a's lease still runs
    assert b.claim_deliveries(T0 + LEASE, 10) == []
    assert [m.id for m in b.claim_unfiltered(T0 + 2 + LEASE + 1, 10)] == [second.id]
    (taken,) = b.claim_deliveries(T0 + 1 + LEASE + 1, 10)
    assert _reclaimed(b) == [1]  # a never released it: it may have delivered it already
    assert a.claim_deliveries(T0 + 1 + LEASE + 2, 10) == []  # b holds it now
    assert taken.message_id == message.id
    a.close()
    b.close()


def test_renewal_keeps_work_and_release_hands_it_over_at_once(store_location: Path | str) -> None:
    a = Store(store_location, lease=Lease("a", LEASE))
    b = Store(store_location, lease=Lease("b", LEASE))
    _spool(a, 3)
    assert a.renew_leases(T0 + LEASE - 1) == 3
    assert b.claim_unfiltered(T0 + LEASE + 1, 10) == []  # renewed: now held till T0+2*LEASE-1
    assert a.release_leases() == 3
    assert len(b.claim_unfiltered(T0 + LEASE + 2, 10)) == 3  # released: taken before expiry
    b.close()
    a.close()


def test_nodes_claiming_at_once_never_share_a_row(store_location: Path | str) -> None:
    origin = Store(store_location, lease=Lease("origin", LEASE))
    spooled = _spool(origin, 300)
    origin.release_leases()
    nodes = [Store(store_location, lease=Lease(f"n{i}", LEASE)) for i in range(3)]

    def drain(node: Store) -> list[str]:
        got: list[str] = []
        while batch := node.claim_unfiltered(T0 + 1, 7):
            got += [m.id for m in batch]
        return got

    with ThreadPoolExecutor(3) as pool:
        shares = list(pool.map(drain, nodes))
    claimed = [m for share in shares for m in share]
    assert sorted(claimed) == sorted(m.id for m in spooled)  # each row exactly once
    for node in (origin, *nodes):
        node.close()


def test_a_job_runs_on_one_node_until_its_holder_falls_silent(store_location: Path | str) -> None:
    a = Store(store_location, lease=Lease("a", LEASE))
    b = Store(store_location, lease=Lease("b", LEASE))
    assert a.hold_job(Job.DIGESTS, T0)
    assert not b.hold_job(Job.DIGESTS, T0 + 1)
    assert a.hold_job(Job.DIGESTS, T0 + 30)  # renewed till T0+30+LEASE
    assert not b.hold_job(Job.DIGESTS, T0 + LEASE + 1)
    assert b.hold_job(Job.PURGE, T0)  # jobs are leased one by one
    assert b.hold_job(Job.DIGESTS, T0 + 30 + LEASE + 1)
    assert not a.hold_job(Job.DIGESTS, T0 + 30 + LEASE + 2)
    a.close()
    b.close()


def test_a_job_newer_than_the_migrations_gets_its_row_on_first_claim(
    store_location: Path | str,
) -> None:
    """The queue watch and the availability probe have no seeded row: the first claim adds
    it, and from then on it has one holder like the others."""
    a = Store(store_location, lease=Lease("a", LEASE))
    b = Store(store_location, lease=Lease("b", LEASE))
    assert a.hold_job(Job.QUEUE_WATCH, T0)
    assert not b.hold_job(Job.QUEUE_WATCH, T0 + 1)
    assert b.hold_job(Job.AVAILABILITY, T0 + 1)
    assert not a.hold_job(Job.AVAILABILITY, T0 + 2)
    assert b.hold_job(Job.QUEUE_WATCH, T0 + LEASE + 1)  # a fell silent
    a.close()
    b.close()


def test_two_nodes_adding_a_jobs_row_at_once_leave_one_holder(
    store_location: Path | str,
) -> None:
    nodes = [Store(store_location, lease=Lease(f"n{i}", LEASE)) for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        held = list(pool.map(lambda s: s.hold_job(Job.AVAILABILITY, T0), nodes))
    assert sum(held) == 1
    for node in nodes:
        node.close()


def test_a_running_node_does_not_claim_its_own_late_leases(store_location: Path | str) -> None:
    a = Store(store_location, lease=Lease("a", LEASE))
    _spool(a, 2)
    assert a.claim_unfiltered(T0 + LEASE + 1, 10) == []  # already in a's memory: not twice
    assert len(a.claim_unfiltered(T0 + LEASE + 1, 10, own=True)) == 2  # a restarted a: all
    a.close()
