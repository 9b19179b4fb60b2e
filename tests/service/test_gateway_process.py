"""The gateway as an operator runs it: a separate process, killed, stopped, run as workers."""

from __future__ import annotations

import asyncio
import contextlib
import email
import os
import re
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiosmtplib
import httpx

from tests.service.gatewayfixtures import POLICY, RawSession, message, rows
from tests.smtpsink import RecordingSink

READY = re.compile(r"SMTP on [\d.]+:(\d+), HTTP on http://[\d.]+:(\d+)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_config(tmp_path: Path, sink_port: int, smtp_port: int = 0, http_port: int = 0) -> Path:
    (tmp_path / "policy.toml").write_text(POLICY)
    config = tmp_path / "gateway.toml"
    config.write_text(f"""
[smtp]
port = {smtp_port}
hostname = "mx.mailmoat.test"
[http]
port = {http_port}
[store]
path = "{tmp_path / "gateway.db"}"
[delivery]
retry_base = 0.2
retry_cap = 0.5
[filter]
policy = "policy.toml"
processes = 0
[domains."example.test"]
downstream = "127.0.0.1:{sink_port}"
""")
    return config


class GatewayProcess:
    """``mailmoat serve`` in a child process; knows its ports once it says it is ready."""

    def __init__(self, config: Path, workers: int = 1) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--config", str(config),
             "--workers", str(workers)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )  # fmt: skip
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # bounded: the child prints the line or exits
            found = READY.search(line)
            if found:
                self.smtp_port, self.http_port = int(found.group(1)), int(found.group(2))
                return
        raise AssertionError(f"gateway exited before it was ready: {self.proc.wait()}")

    def wait(self, timeout: float = 60) -> int:
        status = self.proc.wait(timeout=timeout)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return status

    def kill(self) -> None:
        self.proc.kill()
        self.wait()

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait()


@contextlib.contextmanager
def running(config: Path, workers: int = 1) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(config, workers)
    try:
        yield gateway
    finally:
        if gateway.proc.poll() is None:
            gateway.terminate()


def _queue_id(data: bytes) -> str:
    return str(email.message_from_bytes(data)["X-Mailmoat-Queue-Id"])


async def test_sigkill_loses_nothing_that_got_250(tmp_path: Path, sink: RecordingSink) -> None:
    sink.stop()  # deliveries stay queued, so the kill finds mail in every state
    config = _write_config(tmp_path, sink.port)
    accepted: list[str] = []
    gateway = GatewayProcess(config)

    async def client() -> None:
        for i in range(200):  # bounded; the kill ends it long before
            try:
                async with aiosmtplib.SMTP(hostname="127.0.0.1", port=gateway.smtp_port) as smtp:
                    _, reply = await smtp.sendmail(
                        "alice@sender.test",
                        ["bob@example.test"],
                        message(subject=f"n{i}").as_bytes(),
                    )
            except (aiosmtplib.SMTPException, OSError):
                return  # the gateway died under us: no 250, so the client keeps the message
            accepted.append(reply.rsplit(" ", 1)[1])

    sending = asyncio.create_task(client())
    while len(accepted) < 10:
        await asyncio.sleep(0.01)
    gateway.kill()
    await sending

    with running(config):
        sink.start()
        await sink.wait_for(len(accepted), timeout=60)
        await asyncio.sleep(1.0)  # a duplicate, if any, would arrive with the rest
    delivered = Counter(_queue_id(r.data) for r in sink.received)
    for queue_id in accepted:
        assert delivered[queue_id] == 1, f"{queue_id} delivered {delivered[queue_id]} times"


async def test_sigterm_lets_an_open_session_finish(tmp_path: Path, sink: RecordingSink) -> None:
    config = _write_config(tmp_path, sink.port)
    gateway = GatewayProcess(config)
    session = await RawSession.open(gateway.smtp_port)
    for line in (b"EHLO client.test", b"MAIL FROM:<a@sender.test>", b"RCPT TO:<bob@example.test>"):
        await session.command(line)
    assert (await session.command(b"DATA")).startswith("354")
    gateway.proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)  # the gateway is draining: new connections are refused ...
    try:
        await asyncio.open_connection("127.0.0.1", gateway.smtp_port)
        raise AssertionError("a draining gateway must not accept new connections")
    except ConnectionRefusedError:
        pass
    # ... but the open transaction completes.
    reply = await session.command(b"Subject: in flight\r\n\r\nfinishing during shutdown\r\n.")
    assert reply.startswith("250")
    await session.command(b"QUIT")
    await session.close()
    assert await asyncio.to_thread(gateway.wait) == 0
    assert rows(tmp_path / "gateway.db", "SELECT count(*) FROM messages") == [(1,)]


async def test_two_workers_share_the_port(tmp_path: Path, sink: RecordingSink) -> None:
    config = _write_config(tmp_path, sink.port, _free_port(), _free_port())
    with running(config, workers=2) as gateway:
        for i in range(12):
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=gateway.smtp_port) as smtp:
                await smtp.sendmail(
                    "alice@sender.test", ["bob@example.test"], message(subject=f"w{i}").as_bytes()
                )
        await sink.wait_for(12, timeout=60)
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{gateway.http_port}/metrics")).text
        assert 'mailmoat_messages_accepted_total{direction="inbound"} 12.0' in text
    workers = {w for (w,) in rows(tmp_path / "gateway.db", "SELECT worker FROM messages")}
    assert workers <= {0, 1}
