"""Several gateway nodes on one PostgreSQL: shared work; a killed node's work taken over."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import psycopg

from tests.service.gatewayfixtures import POLICY, eventually, message, rows
from tests.service.test_gateway_process import GatewayProcess, _free_port, _queue_id
from tests.smtpsink import RecordingSink

LEASE = 2.0  # seconds: short, so a dead node's work moves on within the test


def _node_config(tmp_path: Path, name: str, url: str, sink_port: int) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "policy.toml").write_text(POLICY)
    config = folder / "gateway.toml"
    config.write_text(f"""
[smtp]
port = 0
hostname = "mx.mailmoat.test"
[http]
port = 0
[store]
url = "{url}"
node = "{name}"
lease_seconds = {LEASE}
[delivery]
retry_base = 0.2
retry_cap = 0.5
[filter]
policy = "policy.toml"
processes = 0
[quarantine]
link_secret = "shared by every node, 32 characters or more"
[domains."example.test"]
downstream = "127.0.0.1:{sink_port}"
""")
    return config


@contextlib.contextmanager
def nodes(tmp_path: Path, url: str, sink: RecordingSink, n: int) -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    try:
        for i in range(n):
            started.append(GatewayProcess(_node_config(tmp_path, f"n{i}", url, sink.port)))
        yield started
    finally:
        for node in started:
            if node.proc.poll() is None:
                node.terminate()


async def _send(port: int, count: int, tag: str, accepted: list[str]) -> None:
    """Send ``count`` messages in one session; stops quietly when the node dies under it."""
    try:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
            for i in range(count):
                _, reply = await smtp.sendmail(
                    "alice@sender.test", ["bob@example.test"],
                    message(subject=f"{tag}{i}").as_bytes(),
                )  # fmt: skip
                accepted.append(reply.rsplit(" ", 1)[1])
    except (aiosmtplib.SMTPException, OSError):
        return  # no 250 for the message under way: the client keeps it


def _reclaimed(url: str) -> dict[str, int]:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        found = conn.execute(
            "SELECT message_id, sum(reclaimed) FROM deliveries WHERE kind = 'deliver'"
            " GROUP BY message_id"
        ).fetchall()
    return {message_id: int(n) for message_id, n in found}


async def test_two_nodes_share_work_and_deliver_each_message_once(
    tmp_path: Path, sink: RecordingSink, postgres_url: str
) -> None:
    accepted: list[str] = []
    with nodes(tmp_path, postgres_url, sink, 2) as (a, b):
        await asyncio.gather(
            _send(a.smtp_port, 20, "a", accepted), _send(b.smtp_port, 20, "b", accepted)
        )
        await sink.wait_for(40, timeout=60)
        await asyncio.sleep(LEASE)  # a second delivery, if any, would come within a lease
    assert len(accepted) == 40
    assert Counter(_queue_id(r.data) for r in sink.received) == Counter(accepted)


async def test_a_killed_nodes_mail_is_finished_by_the_others(
    tmp_path: Path, sink: RecordingSink, postgres_url: str
) -> None:
    sink.stop()  # the victim's deliveries stay queued, so the kill strands mail in every state
    accepted: list[str] = []
    with nodes(tmp_path, postgres_url, sink, 3) as (victim, b, c):
        load = asyncio.gather(
            _send(victim.smtp_port, 400, "v", accepted),
            _send(b.smtp_port, 15, "b", accepted),
            _send(c.smtp_port, 15, "c", accepted),
        )
        while len(accepted) < 40:
            await asyncio.sleep(0.01)
        victim.proc.kill()  # SIGKILL: no release, its leases must run out
        await load
        victim.wait()
        sink.start()
        await sink.wait_for(len(accepted), timeout=90)
        await asyncio.sleep(2 * LEASE)
    delivered = Counter(_queue_id(r.data) for r in sink.received)
    reclaimed = _reclaimed(postgres_url)
    assert sum(reclaimed.values()) > 0  # the survivors took over the victim's deliveries
    for queue_id in accepted:
        # Exactly once, unless a dead node's delivery was taken over: then once more at most,
        # and the delivery's record says it was reclaimed.
        assert 1 <= delivered[queue_id] <= 1 + reclaimed.get(queue_id, 0), queue_id


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


async def test_a_killed_workers_mail_is_taken_over_on_sqlite(
    tmp_path: Path, sink: RecordingSink
) -> None:
    """``--workers 2`` on one SQLite file: the same leases, so a dead worker strands nothing."""
    sink.stop()  # both workers queue their deliveries; the kill strands the victim's
    config = _node_config(tmp_path, "solo", "", sink.port)
    text = config.read_text().replace('url = ""\n', f'path = "{tmp_path / "gateway.db"}"\n')
    port = _free_port()
    text = text.replace("[smtp]\nport = 0", f"[smtp]\nport = {port}")
    config.write_text(text.replace("[http]\nport = 0", f"[http]\nport = {_free_port()}"))
    accepted: list[str] = []
    gateway = GatewayProcess(config, workers=2)
    db = tmp_path / "gateway.db"
    holders = "SELECT DISTINCT lease_owner FROM deliveries WHERE state = 'pending'"
    try:
        for round_ in range(10):  # until both workers hold mail (the kernel picks per session)
            sessions = (_send(gateway.smtp_port, 5, f"r{round_}s{i}", accepted) for i in range(6))
            await asyncio.gather(*sessions)
            await eventually(lambda: len(rows(db, "SELECT id FROM deliveries")) == len(accepted))
            if len(rows(db, holders)) == 2:
                break
        workers = _children(gateway.proc.pid)
        os.kill(workers[-1], signal.SIGKILL)
        sink.start()
        await sink.wait_for(len(accepted), timeout=60)
        await asyncio.sleep(LEASE)
    finally:
        gateway.terminate()
    delivered = Counter(_queue_id(r.data) for r in sink.received)
    assert rows(db, "SELECT count(*) FROM deliveries WHERE reclaimed > 0")[0][0] > 0
    # The sink was down until after the kill, so the victim delivered nothing: exactly once.
    assert all(delivered[queue_id] == 1 for queue_id in accepted), delivered
