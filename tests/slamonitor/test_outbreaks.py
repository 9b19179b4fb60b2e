"""Outbreak notices on virtual time: one notice and one mail per outbreak, read at /sla/notices."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select

from slamonitor.api import create_router
from slamonitor.config import SlaSettings
from slamonitor.outbreaks import HOLD, LAG, WATCH, OutbreakWatch
from slamonitor.periods import PERIOD
from store.sla_tables import notices
from store.store import Store
from store.writer import StoreWriter
from tests.slamonitor.conftest import NOV, event, insert
from tests.slamonitor.test_api import ACME, principal


@pytest.fixture
async def writer(store: Store) -> AsyncIterator[StoreWriter]:
    running = StoreWriter(store)
    running.start()
    yield running
    await running.close()


class Harness:
    """A watch whose clock the test moves period by period, and the mail it sends."""

    def __init__(self, writer: StoreWriter, engine: Engine) -> None:
        self.engine = engine
        self.now = NOV
        self.mailed: list[tuple[str, str, str]] = []
        contacts = {"acme.test": "it@acme.test", "other.test": "ops@other.test"}
        self.watch = OutbreakWatch(
            writer.write, contacts, self.mail, clock=lambda: self.now, min_messages=200
        )
        self.period = 0

    async def mail(self, to: str, subject: str, body: str) -> None:
        self.mailed.append((to, subject, body))

    async def period_with(self, total: int, viruses: int) -> None:
        """One 5-minute period of mail, then the watch judges it once it is over."""
        start = NOV + self.period * PERIOD
        rows = [
            event(f"p{self.period}-{i}", start + i * PERIOD / total, domain="acme.test",
                  category="virus" if i < viruses else "clean")
            for i in range(total)
        ]  # fmt: skip
        insert(self.engine, rows)
        self.period += 1
        self.now = NOV + self.period * PERIOD + LAG
        await self.watch.check_once()

    def notices(self) -> list[tuple[float, float, str]]:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(notices.c.start_at, notices.c.end_at, notices.c.created_by).order_by(
                    notices.c.id
                )
            )
            return [(r.start_at, r.end_at, r.created_by) for r in found]


async def test_an_outbreak_is_told_once_however_long_it_lasts(
    writer: StoreWriter, engine: Engine
) -> None:
    h = Harness(writer, engine)
    await h.period_with(400, 1)  # 1:400, no outbreak
    assert h.notices() == [] and h.mailed == []
    await h.period_with(400, 3)  # above 1:200: declared
    await h.period_with(400, 40)  # still going: the same notice, stretched
    await h.period_with(400, 10)
    start = NOV + PERIOD
    assert h.notices() == [(start, start + 3 * PERIOD + HOLD, WATCH)]
    assert sorted(to for to, _, _ in h.mailed) == ["it@acme.test", "ops@other.test"]
    assert all("3 of 400" in body and "/sla/notices" in body for _, _, body in h.mailed)
    await h.period_with(400, 0)  # over
    await h.period_with(400, 5)  # a new outbreak: a second notice and mail
    assert len(h.notices()) == 2 and len(h.mailed) == 4


async def test_a_virus_in_a_quiet_period_is_no_outbreak_notice(
    writer: StoreWriter, engine: Engine
) -> None:
    h = Harness(writer, engine)
    await h.period_with(50, 5)  # 1:10, but below the floor of 200 messages
    assert h.notices() == [] and h.mailed == []


async def test_a_restarted_watch_stretches_the_notice_rather_than_telling_again(
    writer: StoreWriter, engine: Engine
) -> None:
    h = Harness(writer, engine)
    await h.period_with(300, 3)
    restarted = Harness(writer, engine)  # a new process: nothing in memory
    restarted.period = h.period
    await restarted.period_with(300, 3)
    assert len(h.notices()) == 1 and h.mailed and restarted.mailed == []


async def test_customers_read_the_outbreak_notice(writer: StoreWriter, engine: Engine) -> None:
    h = Harness(writer, engine)
    await h.period_with(400, 3)
    app = FastAPI()
    app.include_router(
        create_router(
            engine, principal, write=writer.write, clock=lambda: h.now, settings=SlaSettings()
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sla") as client:
        (seen,) = (await client.get("/sla/notices?current=true", headers=ACME)).json()
    assert (seen["kind"], seen["title"], seen["domain"]) == ("emergency", "Virus outbreak", None)
