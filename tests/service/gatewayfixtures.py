"""Helpers to run a real gateway on loopback in tests: config, raw SMTP, sending."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib

from service.config import GatewayConfig

POLICY = """
blacklist = ["spammer.example"]

[domains."example.test"]
redirect_to = "review@example.test"
subject_tag = "[SPAM]"

[domains."example.test".users."tagme@example.test"]
blacklist = ["tagged.example"]

[domains."example.test".heuristics]
thresholds = { quarantine = 1000.0 }

[domains."other.test".actions]
blacklist = "tag_subject"
"""


def gateway_config(tmp_path: Path, sink_port: int, **sections: dict[str, Any]) -> GatewayConfig:
    """A gateway on ephemeral ports, delivering example.test and sender.test to the sink."""
    policy = tmp_path / "policy.toml"
    if not policy.exists():
        policy.write_text(POLICY)
    downstream = f"127.0.0.1:{sink_port}"
    data: dict[str, Any] = {
        "smtp": {
            "port": 0,
            "hostname": "mx.mailmoat.test",
            "max_message_size": 1_000_000,
            "max_recipients": 3,
        },
        "http": {"port": 0},
        "store": {"path": str(tmp_path / "gateway.db")},
        "delivery": {"retry_base": 0.2, "retry_cap": 0.5, "timeout": 10},
        "filter": {"policy": str(policy), "processes": 0},
        "domains": {
            "example.test": {"downstream": downstream},
            "other.test": {"downstream": downstream},
            "sender.test": {"downstream": downstream},
        },
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return GatewayConfig.model_validate(data)


def message(
    subject: str = "Quarterly planning",
    body: str = "Hello Bob, the planning meeting moves to Thursday at ten.",
    sender: str = "alice@sender.test",
    to: str = "bob@example.test",
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Message-ID"] = f"<{abs(hash((subject, body)))}@sender.test>"
    msg["Date"] = "Tue, 24 Nov 2026 09:00:00 +0000"
    msg.set_content(body)
    return msg


async def send(
    port: int,
    msg: EmailMessage | bytes,
    sender: str = "alice@sender.test",
    rcpts: tuple[str, ...] = ("bob@example.test",),
) -> tuple[dict[str, Any], str]:
    """Send with a real client; returns aiosmtplib's (refused recipients, final reply)."""
    data = msg if isinstance(msg, bytes) else msg.as_bytes()
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60) as client:
        errors, reply = await client.sendmail(sender, list(rcpts), data)
    return errors, reply


class RawSession:
    """A line-level SMTP conversation, for what a polite client library will not send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> RawSession:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        session = cls(reader, writer)
        await session.reply()
        return session

    async def reply(self) -> str:
        """The next complete reply (multi-line replies joined)."""
        lines = []
        while True:
            line = (await asyncio.wait_for(self.reader.readline(), 30)).decode()
            lines.append(line.rstrip())
            if len(line) < 4 or line[3] != "-":
                return "\n".join(lines)

    async def command(self, line: bytes) -> str:
        self.writer.write(line + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(query))


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 15.0) -> None:
    """Wait until ``check`` holds: polling with a deadline, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
