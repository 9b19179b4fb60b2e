"""Distinct recipients scanned: folded from events once each, by month in the SLA time zone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from slamonitor import usage
from slamonitor.periods import Month
from store.schema import messages
from store.sla_tables import usage_recipients
from store.store import Store
from tests.slamonitor.conftest import NOV, event, insert


@pytest.fixture
def store(store_location: Path | str) -> Iterator[Store]:
    """Folding skips addresses already counted, spelled per engine: run on both."""
    opened = Store(store_location)
    yield opened
    opened.close()


def spool(engine: Engine, message_id: str, at: float, rcpts: list[str]) -> None:
    with engine.begin() as conn:
        conn.execute(messages.insert().values(
            id=message_id, received_at=at, client_ip="192.0.2.9", helo="mx.sender.test",
            mail_from="a@sender.test", rcpt_tos=json.dumps(rcpts), size=1, raw=b"x",
            state="filtered", worker=0,
        ))  # fmt: skip


def counted(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        found = conn.execute(select(usage_recipients).order_by(*usage_recipients.c)).all()
    return [tuple(r) for r in found]


def test_events_are_folded_once_and_new_ones_later(engine: Engine) -> None:
    spool(engine, "m1", NOV + 60, ["Ann@acme.test", "zed@other.test"])
    insert(
        engine,
        [event("m1", NOV + 60, domain="acme.test"), event("m1", NOV + 60, domain="other.test")],
    )
    insert(engine, [event("lost", NOV + 90, domain="acme.test")])  # its message row is gone
    assert usage.catch_up(engine, "UTC", batch=2) == 3
    assert usage.catch_up(engine, "UTC") == 0
    assert counted(engine) == [
        ("2026-11", "acme.test", "ann@acme.test"),
        ("2026-11", "other.test", "zed@other.test"),
    ]
    spool(engine, "m2", NOV + 120, ["ann@ACME.test", "bob@acme.test"])
    insert(engine, [event("m2", NOV + 120, domain="acme.test")])
    assert usage.catch_up(engine, "UTC") == 1
    with engine.connect() as conn:
        assert usage.scanned_recipients(conn, Month(2026, 11), None) == {
            "acme.test": 2, "other.test": 1,
        }  # fmt: skip
        assert usage.scanned_recipients(conn, Month(2026, 11), "other.test") == {"other.test": 1}


@pytest.mark.parametrize(("tz", "month"), [("UTC", "2026-10"), ("Asia/Kathmandu", "2026-11")])
def test_the_month_is_the_sla_time_zones(engine: Engine, tz: str, month: str) -> None:
    at = NOV - 5 * 3600 - 10 * 60  # 18:50 UTC on 31 October: 00:35 on 1 November at +05:45
    spool(engine, "m", at, ["ann@acme.test"])
    insert(engine, [event("m", at, domain="acme.test")])
    usage.catch_up(engine, tz)
    assert counted(engine) == [(month, "acme.test", "ann@acme.test")]


@pytest.mark.parametrize(("users", "band"), [(1, 5), (5, 5), (6, 10), (50, 50), (51, 51)])
def test_price_bands(users: int, band: int) -> None:
    assert usage.band(users) == band


async def test_the_tracker_folds_until_cancelled(engine: Engine) -> None:
    spool(engine, "m", NOV, ["ann@acme.test"])
    insert(engine, [event("m", NOV, domain="acme.test")])
    naps: list[float] = []

    async def sleeper(seconds: float) -> None:
        naps.append(seconds)
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await usage.track(engine, "UTC", interval=60.0, sleeper=sleeper)
    assert naps == [60.0] and len(counted(engine)) == 1
