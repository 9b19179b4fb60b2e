"""The store: migrations, group commit, and recovery state after a crash."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from store.records import EventRecord, NewDelivery, Spooled
from store.store import Store
from store.writer import StoreWriter


def _message(n: int) -> Spooled:
    return Spooled(
        f"Q{n}", 1000.0 + n, "a@sender.test", ("bob@example.test",), b"Subject: x\r\n\r\nx"
    )


def test_migrations_run_once_and_reopen(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    store.spool([_message(1)])
    store.close()
    again = Store(tmp_path / "db.sqlite")  # upgrading an up-to-date schema is a no-op
    assert [m.id for m in again.unfiltered(0, 1)] == ["Q1"]
    assert again.writable()
    again.close()


async def test_concurrent_spools_share_one_commit(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    writer = StoreWriter(store)
    writer.start()
    await asyncio.gather(*(writer.spool(_message(n)) for n in range(50)))
    assert writer.batches == 1  # all 50 queued before the first commit began
    assert len(store.unfiltered(0, 1)) == 50
    await writer.close()
    store.close()


def test_filtering_outcome_is_recorded_in_one_step(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    msg = _message(1)
    store.spool([msg])
    record = EventRecord("example.test", "deliver", "clean", "delivered", 0.0, (), (), 1)
    item = NewDelivery("deliver", "example.test", msg.mail_from, msg.rcpt_tos)
    (created,) = store.record_filtered(msg, 2000.0, [(record, [item], None)]).deliveries
    assert store.unfiltered(0, 1) == []
    assert [d.id for d in store.pending_deliveries(0, 1)] == [created.id]
    assert store.queue_lengths() == {"example.test": 1}
    assert store.delivery_body(created) == msg.raw
    store.finish_delivery(created, "delivered", 2001.0)
    assert store.pending_deliveries(0, 1) == [] and store.queue_lengths() == {}
    store.close()


def test_worker_zero_adopts_rows_of_workers_that_are_gone(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    store.spool([replace(_message(1), worker=1)])
    assert [m.id for m in store.unfiltered(0, 1)] == ["Q1"]  # now one worker: 0 adopts
    assert store.unfiltered(0, 2) == []
    assert [m.id for m in store.unfiltered(1, 2)] == ["Q1"]
    store.close()
