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
import os
import random
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx

from loadtest.chaosparts import CHAOS_HEADER, CountingSink, Disk, GatewayProcess
from loadtest.chaosreport import drain, ended_in_store, report
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


async def _scrape(gateway: GatewayProcess, seconds: list[float], every: float = 0.25) -> None:
    """Time ``GET /metrics`` while the run goes on (failed scrapes, during restarts, skipped)."""
    async with httpx.AsyncClient(timeout=10) as http:
        while True:
            started = time.perf_counter()
            try:
                response = await http.get(f"http://127.0.0.1:{gateway.http_port}/metrics")
                if response.status_code == 200:
                    seconds.append(time.perf_counter() - started)
            except httpx.HTTPError:
                pass
            await asyncio.sleep(every)


@dataclass
class RunLog:
    """What the clients, the scraper and the controller saw during the run."""

    answered: dict[int, float] = field(default_factory=dict)  # id -> first 250
    refused: dict[int, int] = field(default_factory=dict)  # id -> 5xx code
    client_wait: float = 0.0
    temporary: dict[str, int] = field(default_factory=dict)  # reply code or error -> count
    events: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 0
    scrape_idle: list[float] = field(default_factory=list)
    scrape_load: list[float] = field(default_factory=list)


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
    corpus: Sequence[Message], config: ChaosConfig, gateway: GatewayProcess, run: RunLog
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
                await smtp.sendmail(sender, list(rcpts), stamped)
                now = time.monotonic()
                run.answered.setdefault(i, now)
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
    config: ChaosConfig, gateway: GatewayProcess, sink: CountingSink, disk: Disk, run: RunLog
) -> None:
    rng = random.Random(config.seed + 1)
    killed: set[int] = set()
    for at, event in _schedule(config):
        while len(run.answered) + len(run.refused) < at:
            await asyncio.sleep(0.05)
        started = time.monotonic()
        note: dict[str, Any] = {"event": event, "at_message": at}
        if event == "kill_gateway":
            await gateway.kill()
            await gateway.start()
        elif event == "kill_filter":
            pids = [p for p in gateway.filter_pids() if p not in killed]
            while not pids and time.monotonic() - started < 10:
                await asyncio.sleep(0.05)
                pids = [p for p in gateway.filter_pids() if p not in killed]
            if not pids:
                note["skipped"] = "no filter process running"
            else:
                note["pid"] = victim = rng.choice(pids)
                killed.add(victim)  # dead but maybe not yet reaped: never "killed" twice
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
    run = RunLog()
    began = time.monotonic()
    try:
        await gateway.start()
        idle = asyncio.create_task(_scrape(gateway, run.scrape_idle, every=0.05))
        await asyncio.sleep(2.0)  # the anchor: scrapes of an idle gateway, same run
        idle.cancel()
        scraper = asyncio.create_task(_scrape(gateway, run.scrape_load))
        control = asyncio.create_task(_controller(config, gateway, sink, disk, run))
        clients = [_client(corpus, config, gateway, run) for _ in range(config.concurrency)]
        await asyncio.gather(*clients)
        sent_seconds = time.monotonic() - began
        scraper.cancel()
        await control
        stuck = await drain(db, config.drain_timeout)
        await gateway.stop()
        ended = ended_in_store(db)
    finally:
        await gateway.stop()
        await sink.stop()
        disk.close()
    return report(config, run, sink, ended, stuck, sent_seconds, time.monotonic() - began, disk)
