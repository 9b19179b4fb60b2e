"""The store on both engines: migrations, group commit, one-step outcomes, bulk deliveries."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from store.leases import Lease, LeaseLost
from store.records import (
    DeliveryKind,
    DeliveryState,
    EventRecord,
    Held,
    MessageState,
    NewDelivery,
    Outcome,
    Spooled,
)
from store.schema import messages
from store.store import Store
from store.writer import StoreWriter

NOW = 1000.0


def _message(n: int) -> Spooled:
    return Spooled(f"Q{n}", NOW + n, "a@sender.test", ("bob@example.test",), b"Subject: x\r\n\r\nx")


def _outcome(msg: Spooled, domains: int = 1) -> list[tuple[EventRecord, list[NewDelivery], None]]:
    return [
        (
            EventRecord(f"d{i}.test", "deliver", "clean", Outcome.DELIVERED, 0.0, (), (), 1),
            [NewDelivery(DeliveryKind.DELIVER, f"d{i}.test", msg.mail_from, (f"u@d{i}.test",))],
            None,
        )
        for i in range(domains)
    ]


def test_migrations_run_once_and_reopen(store_location: Path | str) -> None:
    store = Store(store_location, lease=Lease("a"))
    store.spool([_message(1)])
    store.close()
    again = Store(store_location, lease=Lease("a"))  # an up-to-date schema is left alone
    assert [m.id for m in again.claim_unfiltered(NOW, 10, own=True)] == ["Q1"]
    assert again.writable()
    again.close()


async def test_concurrent_spools_share_one_commit(store_location: Path | str) -> None:
    store = Store(store_location)
    writer = StoreWriter(store)
    writer.start()
    await asyncio.gather(*(writer.spool(_message(n)) for n in range(50)))
    assert writer.batches == 1  # all 50 queued before the first commit began
    assert len(store.claim_unfiltered(NOW, 100, own=True)) == 50
    await writer.close()
    store.close()


def test_filtering_outcome_is_recorded_in_one_step(store_location: Path | str) -> None:
    store = Store(store_location, lease=Lease("a"))
    msg = _message(1)
    store.spool([msg])
    created = store.record_filtered(msg, 2000.0, _outcome(msg, domains=3)).deliveries
    assert [d.item.domain for d in created] == ["d0.test", "d1.test", "d2.test"]
    assert len({d.id for d in created}) == 3  # ids of one bulk insert, in order
    assert store.claim_unfiltered(9e9, 10) == []
    claimed = store.claim_deliveries(2000.0, 10, own=True)
    assert sorted(d.id for d in claimed) == sorted(d.id for d in created)
    assert store.queue_lengths() == {"d0.test": 1, "d1.test": 1, "d2.test": 1}
    assert store.delivery_body(created[0]) == msg.raw
    assert created[0].raw == msg.raw  # handed on in memory to the first attempt ...
    assert claimed[0].raw is None  # ... while a delivery read back reads its bytes again
    for delivery in created:
        store.finish_delivery(delivery, DeliveryState.DELIVERED, 2001.0)
    assert store.claim_deliveries(9e9, 10) == [] and store.queue_lengths() == {}
    store.close()


def test_a_message_taken_over_is_not_recorded_by_its_first_node(
    store_location: Path | str,
) -> None:
    a = Store(store_location, lease=Lease("a", seconds=30))
    b = Store(store_location, lease=Lease("b", seconds=30))
    msg = _message(1)
    a.spool([msg])
    assert [m.id for m in b.claim_unfiltered(msg.received_at + 31, 10)] == ["Q1"]
    with pytest.raises(LeaseLost):
        a.record_filtered(msg, 2000.0, _outcome(msg))
    assert a.read(lambda c: c.execute(messages.select()).one().state) == MessageState.SPOOLED
    assert len(b.record_filtered(msg, 2000.0, _outcome(msg)).deliveries) == 1
    a.close()
    b.close()


def _held(
    msg: Spooled, held_id: str, rcpts: tuple[str, ...] | None = None
) -> list[tuple[EventRecord, list[NewDelivery], Held]]:
    record = EventRecord("example.test", "quarantine", "spam", Outcome.QUARANTINED, 9.0, (), (), 1)
    held = Held(held_id, "example.test", rcpts or msg.rcpt_tos, "spam", False, 9.0, (), NOW + 9)
    return [(record, [], held)]


def test_account_notices_commit_with_the_outcome(store_location: Path | str) -> None:
    """A new account's notice is queued in the outcome's own transaction: no second commit,
    and an account is never opened without its notice (a failing notice undoes the outcome)."""
    store = Store(store_location, lease=Lease("a"))
    first, second, third = _message(1), _message(2), _message(3)
    store.spool([first, second, third])

    def notices(addresses: list[str], now: float) -> list[NewDelivery]:
        return [NewDelivery(DeliveryKind.NOTIFY, "example.test", "", (a,)) for a in addresses]

    recorded = store.record_filtered(first, NOW + 5, _held(first, "H1"), notices=notices)
    assert recorded.new_accounts == ["bob@example.test"]
    assert [(d.item.kind, d.item.rcpt_tos) for d in recorded.deliveries] == [
        (DeliveryKind.NOTIFY, ("bob@example.test",))
    ]
    again = store.record_filtered(second, NOW + 6, _held(second, "H2"), notices=notices)
    assert (again.new_accounts, again.deliveries) == ([], [])  # known account: no notice

    def broken(addresses: list[str], now: float) -> list[NewDelivery]:
        raise RuntimeError("renderer failed")

    with pytest.raises(RuntimeError):  # carol is new: her notice fails, so nothing is kept
        store.record_filtered(
            third, NOW + 7, _held(third, "H3", ("carol@example.test",)), notices=broken
        )
    assert [m.id for m in store.claim_unfiltered(NOW + 8, 10, own=True)] == ["Q3"]  # still spooled
    store.close()
