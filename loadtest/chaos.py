"""A chaos run: replay into a real gateway while killing it, filling its disk, cutting its mail.

A client sends ``count`` messages (a corpus, cycled, each stamped with an
``X-Chaos-Id``) and, like any MTA, retries a message until it gets a 250 or a
5xx. Meanwhile, at random points of the run, the gateway's whole process
group or one of its filter processes gets SIGKILL (the gateway is restarted
at once), the downstream stops answering for a while, and the store's disk
is full for a while. Then the gateway drains and every stamped message is
accounted for: delivered, held (quarantined or deleted by policy), bounced,
or lost; rows still waiting are stuck; arrivals of one id more than once are
split into gateway redeliveries (same queue id: a kill between the
downstream's 250 and our commit) and client retries (a new queue id: a kill
between our commit and the client reading our 250).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosmtplib

from loadtest.chaosparts import CHAOS_HEADER, CountingSink, Disk, GatewayProcess, chaos_id
from loadtest.corpus import read_corpus
from loadtest.envelopes import envelope_of, without_from_line

Message = tuple[str, tuple[str, ...], bytes]  # sender, recipients, bytes


@dataclass(frozen=True)
class ChaosConfig:
    count: int
    kills: int
    gateway_share: float = 0.3  # the rest are filter-process kills
    concurrency: int = 8
    outage_seconds: float = 5.0
    disk_full_seconds: float = 5.0
    drain_timeout: float = 300.0
    seed: int = 1


@dataclass
class _Run:
    answered: dict[int, float] = field(default_factory=dict)  # id -> first 250
    queue_ids: dict[int, list[str]] = field(default_factory=dict)
    refused: dict[int, int] = field(default_factory=dict)  # id -> 5xx code
    client_wait: float = 0.0
    temporary: dict[str, int] = field(default_factory=dict)  # reply code or error -> count
    events: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 0


def load_corpus(path: Path, domain: str = "example.test") -> list[Message]:
    """The corpus as (sender, recipients, bytes), recipients mapped into ``domain``."""
    out = []
    for item in read_corpus(path):
        data = without_from_line(item.data).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        envelope = envelope_of(data, domain)
        if envelope is not None:
            out.append((envelope.mail_from, tuple(envelope.rcpt_tos), data))
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(path: Path, store: Path, sink: int) -> None:
    path.write_text(f"""
[smtp]
port = 0
hostname = "chaos.mailmoat.test"
max_message_size = 10485760
[http]
port = 0
[store]
path = "{store}"
[delivery]
retry_base = 0.5
retry_cap = 2.0
timeout = 10.0
[filter]
processes = 1
[domains."example.test"]
downstream = "127.0.0.1:{sink}"
""")


async def _client(
    corpus: Sequence[Message], config: ChaosConfig, gateway: GatewayProcess, run: _Run
) -> None:
    smtp: aiosmtplib.SMTP | None = None
    while (i := run.next_id) < config.count:
        run.next_id += 1
        sender, rcpts, data = corpus[i % len(corpus)]
        stamped = f"{CHAOS_HEADER}: {i}\r\n".encode() + data
        first_try = time.monotonic()
        while True:
            try:
                if smtp is None:
                    port = gateway.smtp_port
                    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
                    await smtp.connect()
                _, reply = await smtp.sendmail(sender, list(rcpts), stamped)
                now = time.monotonic()
                run.answered.setdefault(i, now)
                run.queue_ids.setdefault(i, []).append(reply.rsplit(" ", 1)[-1])
                run.client_wait = max(run.client_wait, now - first_try)
                break
            except aiosmtplib.SMTPRecipientsRefused as exc:
                code = min(r.code for r in exc.recipients)
                if code >= 500:
                    run.refused[i] = code
                    break
                run.temporary[str(code)] = run.temporary.get(str(code), 0) + 1
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code >= 500:
                    run.refused[i] = exc.code
                    break
                run.temporary[str(exc.code)] = run.temporary.get(str(exc.code), 0) + 1
            except (aiosmtplib.SMTPException, OSError) as exc:
                name = type(exc).__name__
                run.temporary[name] = run.temporary.get(name, 0) + 1
            if smtp is not None:
                smtp.close()
                smtp = None
            await asyncio.sleep(0.25)  # a real MTA waits longer; the run must go on
    if smtp is not None:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await smtp.quit()


def _schedule(config: ChaosConfig) -> list[tuple[int, str]]:
    """(progress in answered messages, event) pairs, in order."""
    rng = random.Random(config.seed)
    low, high = max(1, config.count // 20), max(2, config.count * 9 // 10)
    events = [
        (rng.randint(low, high), "kill_gateway" if rng.random() < config.gateway_share else
         "kill_filter")
        for _ in range(config.kills)
    ]  # fmt: skip
    events += [(config.count * 35 // 100, "outage"), (config.count * 6 // 10, "disk_full")]
    return sorted(events)


async def _controller(
    config: ChaosConfig, gateway: GatewayProcess, sink: CountingSink, disk: Disk, run: _Run
) -> None:
    rng = random.Random(config.seed + 1)
    for at, event in _schedule(config):
        while len(run.answered) + len(run.refused) < at:
            await asyncio.sleep(0.05)
        started = time.monotonic()
        note: dict[str, Any] = {"event": event, "at_message": at}
        if event == "kill_gateway":
            await gateway.kill()
            await gateway.start()
        elif event == "kill_filter":
            pids = gateway.filter_pids()
            while not pids and time.monotonic() - started < 10:
                await asyncio.sleep(0.05)
                pids = gateway.filter_pids()
            if not pids:
                note["skipped"] = "no filter process running"
            else:
                note["pid"] = victim = rng.choice(pids)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
        elif event == "outage":
            await sink.stop()
            await asyncio.sleep(config.outage_seconds)
            while True:  # the same port: another process may hold it for a moment
                try:
                    await sink.start()
                    break
                except OSError:
                    await asyncio.sleep(0.5)
        elif event == "disk_full":
            if not disk.available:
                note["skipped"] = f"no tmpfs: {disk.why}"
            else:
                disk.fill()
                await asyncio.sleep(config.disk_full_seconds)
                disk.free()
        note["seconds"] = round(time.monotonic() - started, 3)
        run.events.append(note)


def _store_rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return list(conn.execute(query))


async def _drain(db: Path, timeout: float) -> dict[str, int]:
    """Wait until nothing is spooled or pending; returns what still waits after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        spooled = _store_rows(db, "SELECT count(*) FROM messages WHERE state = 'spooled'")[0][0]
        pending = _store_rows(db, "SELECT count(*) FROM deliveries WHERE state = 'pending'")[0][0]
        if (spooled == 0 and pending == 0) or time.monotonic() > deadline:
            return {"spooled": int(spooled), "pending": int(pending)}
        await asyncio.sleep(0.5)


def _ended_in_store(db: Path) -> dict[str, set[int]]:
    """Chaos ids by final outcome other than delivery (held, deleted, bounced, expired)."""
    rows = _store_rows(
        db,
        "SELECT e.outcome, m.raw FROM events e JOIN messages m ON m.id = e.message_id "
        "WHERE e.outcome IN ('quarantined', 'deleted', 'bounced', 'expired')",
    )
    found: dict[str, set[int]] = {}
    for outcome, raw in rows:
        cid = chaos_id(bytes(raw))
        if cid is not None:
            found.setdefault(str(outcome), set()).add(cid)
    return found


async def run_chaos(
    corpus: Sequence[Message], config: ChaosConfig, workdir: Path
) -> dict[str, Any]:
    """The whole run; returns the report (see the module docstring)."""
    workdir.mkdir(parents=True, exist_ok=True)
    disk = Disk(workdir / "store")
    db = disk.path / "gateway.db"
    sink_port = _free_port()
    _config(workdir / "gateway.toml", db, sink_port)
    sink = CountingSink(sink_port, time.monotonic)
    await sink.start()
    gateway = GatewayProcess(workdir / "gateway.toml", workdir / "gateway.log")
    run = _Run()
    began = time.monotonic()
    try:
        await gateway.start()
        control = asyncio.create_task(_controller(config, gateway, sink, disk, run))
        clients = [_client(corpus, config, gateway, run) for _ in range(config.concurrency)]
        await asyncio.gather(*clients)
        sent_seconds = time.monotonic() - began
        await control
        stuck = await _drain(db, config.drain_timeout)
        await gateway.stop()
        ended = _ended_in_store(db)
    finally:
        await gateway.stop()
        await sink.stop()
        disk.close()
    return _report(config, run, sink, ended, stuck, sent_seconds, time.monotonic() - began, disk)


def _report(
    config: ChaosConfig, run: _Run, sink: CountingSink, ended: dict[str, set[int]],
    stuck: dict[str, int], sent_seconds: float, total_seconds: float, disk: Disk,
) -> dict[str, Any]:  # fmt: skip
    answered = set(run.answered)
    delivered = set(sink.by_id)
    held = ended.get("quarantined", set()) | ended.get("deleted", set())
    bounced = ended.get("bounced", set()) | ended.get("expired", set())
    lost = sorted(answered - delivered - held - bounced)
    redelivered = client_retried = 0
    for arrivals in sink.by_id.values():
        if len(arrivals) > 1:
            qids = [a.queue_id for a in arrivals]
            redelivered += len(qids) - len(set(qids))
            client_retried += len(set(qids)) - 1
    waits = [sink.by_id[i][0].at - run.answered[i] for i in delivered & answered]
    kills = [e for e in run.events if e["event"].startswith("kill") and "skipped" not in e]
    return {
        "messages": config.count,
        "answered_250": len(answered),
        "accepted_twice_by_client_retry": sum(len(q) - 1 for q in run.queue_ids.values()),
        "refused_5xx": len(run.refused),
        "delivered": len(delivered),
        "held": len(held),
        "bounced_or_expired": len(bounced),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "stuck_rows": stuck,
        "delivered_twice": {"gateway_redelivery": redelivered, "client_retry": client_retried},
        "longest_wait_after_250_seconds": round(max(waits, default=0.0), 3),
        "longest_client_wait_for_250_seconds": round(run.client_wait, 3),
        "kills": {
            "gateway": sum(e["event"] == "kill_gateway" for e in kills),
            "filter": sum(e["event"] == "kill_filter" for e in kills),
        },
        "temporary_replies": run.temporary,
        "disk_full": "tmpfs shrunk to its used size" if disk.available else f"skipped: {disk.why}",
        "events": run.events,
        "sending_seconds": round(sent_seconds, 1),
        "total_seconds": round(total_seconds, 1),
    }


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
