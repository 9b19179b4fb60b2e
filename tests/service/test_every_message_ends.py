"""Every message ends: store faults, odd senders, surprising exceptions; a scan for stuck rows."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest

from service.app import Gateway
from store.records import DeliveryKind
from tests.service.conftest import Start
from tests.service.gatewayfixtures import POLICY, eventually, message, rows, send
from tests.service.storefaults import WriteFault
from tests.smtpsink import RecordingSink


def assert_nothing_stuck(gateway: Gateway) -> None:
    """With the gateway idle, every row is finished or has a future the gateway will act on.

    A spooled message nobody filters, or a pending delivery that is not in the
    delivery heap, would wait for a restart: that is what "stuck" means.
    """
    db = gateway.config.store.path
    assert gateway.processor.backlog_messages == 0
    assert rows(db, "SELECT id FROM messages WHERE state = 'spooled'") == []
    pending = {r[0] for r in rows(db, "SELECT id FROM deliveries WHERE state = 'pending'")}
    assert pending <= gateway.outbound.scheduled(), "pending deliveries nobody will attempt"


async def _ready(gateway: Gateway) -> tuple[int, list[str]]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}") as http:
        response = await http.get("/readyz")
    body = response.json()
    return response.status_code, body.get("failed", [])


async def test_store_write_fault_is_waited_out_without_restart_or_duplicate(
    start_gateway: Start, sink: RecordingSink
) -> None:
    gateway = await start_gateway()
    fault = WriteFault(gateway.store)
    sink.hold_at_data()  # the downstream has the message but has not answered yet
    await send(gateway.smtp_port, message("delivered during the fault"))
    await eventually(sink.holding.is_set)
    fault.fail(True)
    assert await _ready(gateway) == (503, ["store"])
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:  # never 250 for what is not stored
        await send(gateway.smtp_port, message("refused during the fault"))
    assert refused.value.code == 451
    sink.release()  # 250 from downstream, and the bookkeeping write fails
    await sink.wait_for(1, timeout=15)
    db = gateway.config.store.path
    assert rows(db, "SELECT state FROM deliveries") == [("pending",)]
    fault.fail(False)
    await eventually(lambda: rows(db, "SELECT state FROM deliveries") == [("delivered",)])
    assert await _ready(gateway) == (200, [])
    assert len(sink.received) == 1  # recorded, not sent again
    assert_nothing_stuck(gateway)


async def test_deliveries_end_whatever_they_hit(start_gateway: Start, sink: RecordingSink) -> None:
    gateway = await start_gateway()
    # A bounce (null sender) refused downstream: bounced, and no DSN to nobody.
    sink.reply_at_rcpt("550 5.1.1 no such user", ["gone@example.test"])
    await send(gateway.smtp_port, message("bounce"), sender="", rcpts=("gone@example.test",))
    # A temporary refusal, then success: retried on schedule.
    sink.reply_at_rcpt("451 4.3.0 try later", ["later@example.test"])
    await send(gateway.smtp_port, message("later"), rcpts=("later@example.test",))
    # A row written before the edge checked addresses: the recipient cannot be encoded.
    created = await gateway.writer.call(
        gateway.store.submit, b"Subject: old\r\n\r\nold row\r\n", ["\udc9a@example.test"],
        time.time(), DeliveryKind.ALERT,
    )  # fmt: skip
    gateway.outbound.add(created)
    db = gateway.config.store.path

    def states() -> dict[str, tuple[str, int]]:
        found = rows(db, "SELECT rcpt_tos, state, attempts FROM deliveries")
        return {rcpts: (state, attempts) for rcpts, state, attempts in found}

    later = '["later@example.test"]'
    await eventually(lambda: states().get(later, ("", 0))[1] >= 2)  # deferred, tried again
    sink.heal()
    await eventually(lambda: all(state != "pending" for state, _ in states().values()))
    assert {k: v[0] for k, v in states().items()} == {
        '["gone@example.test"]': "bounced",
        later: "delivered",
        '["\\udc9a@example.test"]': "bounced",
    }
    assert [r.rcpt_tos for r in sink.received] == [("later@example.test",)]  # no DSN anywhere
    assert_nothing_stuck(gateway)


async def test_restart_streams_the_backlog_through_the_filter(
    start_gateway: Start, sink: RecordingSink, tmp_path: Path
) -> None:
    first = await start_gateway(filter={"processes": 1})
    await send(first.smtp_port, message("warm up"))
    await sink.wait_for(1, timeout=30)
    (tmp_path / "policy.toml").write_text("not TOML [")  # filtering stalls: mail piles up
    os.kill(first.classifier.pool.pids()[0], signal.SIGKILL)
    for i in range(6):
        await send(first.smtp_port, message(f"backlog {i}"))
    await first.stop()
    (tmp_path / "policy.toml").write_text(POLICY)
    # A backlog limit of 2: the six are read from the store two at a time, not all at start.
    second = await start_gateway(filter={"processes": 0, "backlog_messages": 2})
    seen = 0

    def drained() -> bool:
        nonlocal seen
        seen = max(seen, second.processor.backlog_messages)
        return len(sink.received) == 7

    await eventually(drained, timeout=60)
    assert seen <= 2
    assert_nothing_stuck(second)


async def test_a_message_waiting_to_be_filtered_again_takes_no_filter_slot(
    start_gateway: Start, sink: RecordingSink
) -> None:
    # One filter slot, and a minute before the failed message's next attempt: held in its
    # slot meanwhile (as it was), it would keep the healthy message out for that minute.
    gateway = await start_gateway(filter={"concurrency": 1, "max_attempts": 2, "retry_delay": 60})
    classify = gateway.classifier.classify

    async def failing_on_poison(raw: bytes, *args: Any, **kwargs: Any) -> Any:
        if b"poison" in raw:
            raise RuntimeError("this message breaks the filter")
        return await classify(raw, *args, **kwargs)

    gateway.classifier.classify = failing_on_poison  # type: ignore[method-assign]
    _, reply = await send(gateway.smtp_port, message("poison"))
    poison = reply.rsplit(" ", 1)[1]
    await eventually(lambda: poison in gateway.processor.retrying)
    await send(gateway.smtp_port, message("healthy"))
    await sink.wait_for(1, timeout=30)
    assert b"healthy" in sink.received[0].data
    db = gateway.config.store.path
    assert rows(db, f"SELECT state FROM messages WHERE id = '{poison}'") == [("spooled",)]
    assert gateway.processor.backlog_messages == 1  # still counted until it ends
