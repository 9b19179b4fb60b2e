"""The store on both engines: migrations, group commit, one-step outcomes, bulk deliveries."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from store.holding import QuarantineUnavailable
from store.leases import Lease, LeaseLost
from store.records import (
    DeliveryKind,
    DeliveryState,
    EventRecord,
    Filtered,
    Finished,
    Held,
    MessageState,
    NewDelivery,
    Outcome,
    Recorded,
    Spooled,
)
from store.schema import events, messages
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


def _notices(addresses: list[str], now: float) -> list[NewDelivery]:
    return [NewDelivery(DeliveryKind.NOTIFY, "example.test", "", (a,)) for a in addresses]


async def test_outcomes_share_a_commit_and_each_caller_gets_its_own(
    store_location: Path | str,
) -> None:
    """Outcomes recorded together give each message what recording it alone gives: its own
    deliveries, and a new account (with its notice) only for the first to hold mail for it."""
    store = Store(store_location, lease=Lease("a"))
    writer = StoreWriter(store)
    writer.start()
    msgs = [_message(n) for n in range(4)]
    store.spool(msgs)
    batch = [
        Filtered(msgs[0], NOW + 5, _outcome(msgs[0], domains=2)),
        Filtered(msgs[1], NOW + 5, _held(msgs[1], "H1"), notices=_notices),
        Filtered(msgs[2], NOW + 5, _held(msgs[2], "H2"), notices=_notices),  # bob again
        Filtered(msgs[3], NOW + 5, _held(msgs[3], "H3", ("Carol@example.test",)), 1_000, _notices),
    ]
    recorded = await asyncio.gather(*(writer.record(f) for f in batch))
    assert writer.batches == 1  # all four queued before the first commit began
    assert [d.item.domain for d in recorded[0].deliveries] == ["d0.test", "d1.test"]
    assert recorded[0].deliveries[0].raw == msgs[0].raw
    assert [r.new_accounts for r in recorded] == [
        [], ["bob@example.test"], [], ["carol@example.test"]
    ]  # fmt: skip
    assert [[d.item.rcpt_tos for d in r.deliveries] for r in recorded[1:]] == [
        [("bob@example.test",)], [], [("carol@example.test",)]
    ]  # fmt: skip
    assert store.claim_unfiltered(9e9, 10) == []
    ids = [d.id for r in recorded for d in r.deliveries]
    assert len(set(ids)) == len(ids) == 4
    await writer.close()
    store.close()


async def test_a_message_that_cannot_be_recorded_fails_alone_in_its_batch(
    store_location: Path | str,
) -> None:
    """A lost lease or a full quarantine in a batch fails only its own caller: the batch is
    rolled back and the messages are recorded one by one, each as it would have been."""
    a = Store(store_location, lease=Lease("a", seconds=30))
    b = Store(store_location, lease=Lease("b", seconds=30))
    writer = StoreWriter(a)
    taken, kept, full = _message(1), _message(2), _message(3)
    a.spool([taken, kept, full])
    b.spool([_message(9)])
    b.record_filtered(_message(9), NOW, _held(_message(9), "H9"))  # example.test holds one
    assert [m.id for m in b.claim_unfiltered(taken.received_at + 31, 1)] == ["Q1"]
    results = await asyncio.gather(
        writer.record(Filtered(taken, NOW + 40, _outcome(taken))),
        writer.record(Filtered(kept, NOW + 40, _outcome(kept))),
        writer.record(Filtered(full, NOW + 40, _held(full, "H3"), quarantine_quota=1)),
        return_exceptions=True,
    )
    assert isinstance(results[0], LeaseLost)
    assert isinstance(results[1], Recorded) and len(results[1].deliveries) == 1
    assert isinstance(results[2], QuarantineUnavailable)
    assert writer.batches == 0  # the batch did not commit: each message went alone
    states = dict(a.read(lambda c: c.execute(select(messages.c.id, messages.c.state)).all()))
    assert states == {"Q1": "spooled", "Q2": "filtered", "Q3": "spooled", "Q9": "filtered"}
    await writer.close()
    a.close()
    b.close()


async def test_finished_deliveries_share_a_commit_and_close_their_events(
    store_location: Path | str,
) -> None:
    store = Store(store_location, lease=Lease("a"))
    writer = StoreWriter(store)
    msgs = [_message(n) for n in range(3)]
    store.spool(msgs)
    created = [d for m in msgs for d in store.record_filtered(m, NOW, _outcome(m)).deliveries]
    dsn = NewDelivery(DeliveryKind.DSN, "sender.test", "", ("a@sender.test",), body=b"x")
    follow_ups = await asyncio.gather(
        writer.finish(Finished(created[0], DeliveryState.DELIVERED, NOW + 1)),
        writer.finish(Finished(created[1], DeliveryState.BOUNCED, NOW + 2, "550 no", [dsn])),
        writer.finish(Finished(created[2], DeliveryState.EXPIRED, NOW + 3, "4xx for days")),
    )
    assert writer.batches == 1
    assert [[d.item.kind for d in f] for f in follow_ups] == [[], [DeliveryKind.DSN], []]
    query = select(events.c.message_id, events.c.delivered_at, events.c.outcome, events.c.detail)
    got = sorted(store.read(lambda c: c.execute(query).all()))
    assert got == [
        ("Q0", NOW + 1, Outcome.DELIVERED, None),
        ("Q1", None, DeliveryState.BOUNCED, "550 no"),
        ("Q2", None, DeliveryState.EXPIRED, "4xx for days"),
    ]
    assert store.claim_deliveries(9e9, 10, own=True) == follow_ups[1]
    await writer.close()
    store.close()
