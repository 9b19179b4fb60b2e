"""Quarantine chores with three gateway nodes on one PostgreSQL: each digest goes out once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from service.app import Gateway
from tests.quarantine.conftest import VirtualClock
from tests.service.gatewayfixtures import eventually, gateway_config, message, send
from tests.smtpsink import RecordingSink, started_sink

DAY = 86400.0
LEASE = 60.0


@pytest.fixture
async def cluster(
    tmp_path: Path, postgres_url: str
) -> AsyncIterator[tuple[list[Gateway], RecordingSink, VirtualClock]]:
    sink, clock = started_sink(), VirtualClock()
    gateways = []
    for i in range(3):
        config = gateway_config(
            tmp_path, sink.port,
            store={"url": postgres_url, "node": f"n{i}", "lease_seconds": LEASE},
            quarantine={"link_secret": "one key for every node of the cluster",
                        "digest_interval": 3600.0},
        )  # fmt: skip
        gateway = Gateway(config, clock=clock, serve_http=False)
        await gateway.start()
        gateways.append(gateway)
    yield gateways, sink, clock
    for gateway in gateways:
        await gateway.stop()
    sink.stop()


def _count(url: str, query: str) -> int:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


async def _digests(sink: RecordingSink) -> int:
    await asyncio.sleep(0.5)  # a second digest, if any, would be delivered by now
    return sum(b"Subject: Quarantine digest" in r.data for r in sink.received)


async def test_each_digest_goes_out_once_however_many_nodes_run(
    cluster: tuple[list[Gateway], RecordingSink, VirtualClock], postgres_url: str
) -> None:
    gateways, sink, clock = cluster
    spam = message(subject="cheap pills", sender="x@spammer.example")
    await send(gateways[1].smtp_port, spam, sender="x@spammer.example")
    await eventually(lambda: _count(postgres_url, "SELECT count(*) FROM quarantine") == 1)
    clock.advance(DAY)  # bob's daily digest is due
    # Every node builds it at the same moment, bypassing the job lease: one still wins.
    sent = await asyncio.gather(*(g.upkeep.send_digests() for g in gateways))
    assert sorted(sent) == [0, 0, 1]
    await eventually(lambda: any(b"Quarantine digest" in r.data for r in sink.received))
    assert await _digests(sink) == 1


async def test_digests_run_on_the_node_holding_the_lease_until_it_falls_silent(
    cluster: tuple[list[Gateway], RecordingSink, VirtualClock], postgres_url: str
) -> None:
    gateways, _, clock = cluster
    spam = message(subject="cheap pills", sender="x@spammer.example")
    await send(gateways[0].smtp_port, spam, sender="x@spammer.example")
    await eventually(lambda: _count(postgres_url, "SELECT count(*) FROM quarantine") == 1)
    # Every node's first round raced for the job; exactly one won it.
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as conn:
        row = conn.execute("SELECT owner FROM job_leases WHERE name = 'digests'").fetchone()
    assert row is not None
    (holder,) = [g for g in gateways if g.store.lease.owner == row[0]]
    others = [g for g in gateways if g is not holder]
    clock.advance(DAY)
    await holder.takeover.renew()  # the holder is alive: its lease round keeps the job
    assert [await g.upkeep.round() for g in others] == [0, 0]
    clock.advance(LEASE + 1)  # the holder fell silent: its lease ran out unrenewed
    assert await others[0].upkeep.round() == 1
    assert await holder.upkeep.round() == 0  # the job moved on with its lease
