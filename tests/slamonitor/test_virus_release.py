"""The 8-business-hour virus release target on virtual time, through a running gateway:
measured from the request to the delivery, with ignored requests counted late."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.quarantine.conftest import START, Env, start_env, stop_env
from tests.service.gatewayfixtures import eventually, rows

HOUR = 3600.0
DUE = START + 24 * HOUR
"""START is Wednesday 11:06:40 UTC; 8 hours of a 09:00-17:00 weekday desk end Thursday 11:06:40."""


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    running = await start_env(tmp_path)
    yield running
    await stop_env(running)


async def request(env: Env, held_id: str) -> str:
    made = await env.http.post(
        f"/api/v1/quarantine/{held_id}/release-requests",
        headers=env.auth("beta"),
        json={"reason": "the invoice is genuine"},
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def approve(env: Env, request_id: str) -> None:
    decided = await env.http.post(
        f"/api/v1/release-requests/{request_id}/decision",
        headers=env.auth("ops"),
        json={"approve": True, "reason": "checked with the sender"},
    )
    assert decided.status_code == 200, decided.text


async def virus_release(env: Env) -> dict[str, Any]:
    summary = await env.http.get("/sla/summary?domain=other.test", headers=env.auth("beta"))
    level: dict[str, Any] = summary.json()["levels"]["virus_release"]
    return level


def released_deliveries(env: Env, state: str) -> int:
    query = f"SELECT count(*) FROM deliveries WHERE kind = 'release' AND state = '{state}'"
    return int(rows(env.db, query)[0][0])


async def test_release_is_timed_to_delivery_and_ignored_requests_are_late(env: Env) -> None:
    quick, stuck, ignored = [await env.hold_virus() for _ in range(3)]
    requests = [await request(env, held) for held in (quick, stuck, ignored)]
    env.clock.advance(HOUR)
    await approve(env, requests[0])
    await env.released_to("carol@other.test")
    env.sink.reply_at_rcpt("451 4.3.0 mailbox busy")
    env.clock.advance(HOUR)
    await approve(env, requests[1])  # approved in time, but the customer's server defers it
    await eventually(lambda: released_deliveries(env, "pending") == 1)
    early = await virus_release(env)
    assert (early["within"], early["late"], early["pending"]) == (1, 0, 2)

    env.clock.now = DUE + 0.5 * HOUR  # Thursday, past the deadline
    env.sink.heal()
    await eventually(lambda: released_deliveries(env, "delivered") == 2)
    late = await virus_release(env)
    assert (late["within"], late["late"], late["pending"]) == (1, 2, 0)
    assert (late["ignored"], late["undelivered"]) == (1, 0)
    assert late["measured"] == 1 / 3 and late["met"] is False
