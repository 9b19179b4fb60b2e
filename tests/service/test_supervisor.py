"""Filter processes under a supervisor: killed, unable to start, or hung on one message."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import Gateway
from tests.service.gatewayfixtures import POLICY, eventually, gateway_config, message, rows, send
from tests.smtpsink import RecordingSink

Start = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def start_gateway(tmp_path: Path, sink: RecordingSink) -> AsyncIterator[Start]:
    running: list[Gateway] = []

    async def start(**sections: dict[str, Any]) -> Gateway:
        filters = {"processes": 1, **sections.pop("filter", {})}
        gateway = Gateway(gateway_config(tmp_path, sink.port, filter=filters, **sections))
        await gateway.start()
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        await gateway.stop()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


async def _scrape(gateway: Gateway) -> str:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}") as http:
        return (await http.get("/metrics")).text


async def test_killed_filter_process_is_replaced_and_its_work_resubmitted(
    start_gateway: Start, sink: RecordingSink
) -> None:
    gateway = await start_gateway()
    await send(gateway.smtp_port, message("warm up"))
    await sink.wait_for(1, timeout=30)
    for round_ in range(2):  # the replacement can itself be killed
        (pid,) = gateway.classifier.pool.pids()
        for i in range(10):
            await send(gateway.smtp_port, message(f"round {round_} message {i}"))
        os.kill(pid, signal.SIGKILL)  # while those ten are queued or being filtered
        await sink.wait_for(1 + 10 * (round_ + 1), timeout=60)
        replaced = lambda old=pid: gateway.classifier.pool.pids() not in ([], [old])  # noqa: E731
        await eventually(replaced, timeout=30)
    subjects = [r.data.split(b"Subject: ", 1)[1].split(b"\n", 1)[0] for r in sink.received]
    assert len(subjects) == len(set(subjects)) == 21  # every message once, none lost
    metrics = await _scrape(gateway)
    assert _metric(metrics, "mailmoat_filter_restarts_total") >= 2
    assert _metric(metrics, "mailmoat_messages_unscanned_total") == 0
    db = gateway.config.store.path
    assert rows(db, "SELECT count(*) FROM messages WHERE state != 'filtered'") == [(0,)]


async def test_readiness_is_red_while_no_filter_process_can_start(
    start_gateway: Start, sink: RecordingSink, tmp_path: Path
) -> None:
    gateway = await start_gateway()
    await send(gateway.smtp_port, message("warm up"))
    await sink.wait_for(1, timeout=30)
    (pid,) = gateway.classifier.pool.pids()
    (tmp_path / "policy.toml").write_text("this is not TOML [")  # new processes cannot start
    os.kill(pid, signal.SIGKILL)
    _, reply = await send(gateway.smtp_port, message("waits for a filter"))
    assert reply.startswith("2.0.0 Ok")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}") as http:

        async def red() -> bool:
            response = await http.get("/readyz")
            return response.status_code == 503 and "filter" in response.json()["failed"]

        await eventually(red, timeout=30)
        (tmp_path / "policy.toml").write_text(POLICY)
        await sink.wait_for(len(sink.received) + 1, timeout=60)

        async def green() -> bool:
            return (await http.get("/readyz")).status_code == 200

        await eventually(green, timeout=30)
    # Waiting for a pool that cannot start is nobody's fault: nothing was held as unscanned.
    assert _metric(await _scrape(gateway), "mailmoat_messages_unscanned_total") == 0


async def test_message_that_outlasts_the_hard_timeout_is_held_as_unscanned(
    start_gateway: Start, sink: RecordingSink
) -> None:
    # 5 ms is far less than filtering 400 kB takes, and far more than a trivial call needs.
    gateway = await start_gateway(
        filter={"hard_timeout": 0.005, "max_attempts": 2, "retry_delay": 0.1},
        smtp={"max_message_size": 1_000_000},
    )
    slow = message("hangs the filter", body="lorem ipsum dolor sit amet\n" * 15_000)
    _, reply = await send(gateway.smtp_port, slow)
    slow_id = reply.rsplit(" ", 1)[1]
    db = gateway.config.store.path
    await eventually(
        lambda: rows(db, f"SELECT state FROM messages WHERE id = '{slow_id}'") == [("filtered",)],
        timeout=60,
    )
    assert rows(db, f"SELECT category, state FROM quarantine WHERE message_id = '{slow_id}'") == [
        ("unscanned", "held")
    ]
    ((category, outcome, detail),) = rows(
        db, f"SELECT category, outcome, detail FROM events WHERE message_id = '{slow_id}'"
    )
    assert (category, outcome) == ("unscanned", "quarantined")
    assert "filtering failed 2 times" in detail and "longer than 0.005 s" in detail
    metrics = await _scrape(gateway)
    assert _metric(metrics, "mailmoat_messages_unscanned_total") == 1
    assert _metric(metrics, "mailmoat_filter_restarts_total") >= 2
    # Not delivered (bob only gets the new-account notice of his quarantine).
    await sink.wait_for(1, timeout=30)
    assert not any(b"hangs the filter" in r.data for r in sink.received)


async def test_filter_processes_do_not_keep_the_gateways_sockets(
    start_gateway: Start, sink: RecordingSink
) -> None:
    # Like the replay sink of `make demo`: a listener open while the filter processes start.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    gateway = await start_gateway()
    await send(gateway.smtp_port, message("starts the filter process"))
    await sink.wait_for(1, timeout=30)
    assert gateway.classifier.pool.pids()
    listener.close()
    with pytest.raises(ConnectionRefusedError):  # nobody holds the port any more
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
