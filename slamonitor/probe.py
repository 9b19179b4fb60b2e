"""One SMTP health probe (connect, EHLO, QUIT): the port-25 check and the receiving-server test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosmtplib

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Whether the server took a session, and what it said or why it failed."""

    ok: bool
    detail: str


async def smtp_probe(
    host: str, port: int, *, timeout: float = 10.0, helo: str = "mailmoat-probe"
) -> ProbeResult:
    """Connect, EHLO and QUIT; any refusal, timeout or non-2xx reply is a failure."""
    client = aiosmtplib.SMTP(
        hostname=host, port=port, timeout=timeout, local_hostname=helo, start_tls=False
    )
    try:
        await client.connect()
        reply = await client.ehlo()
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return ProbeResult(False, f"{host}:{port}: {type(exc).__name__}: {exc}")
    finally:
        if client.is_connected:
            client.close()
    return ProbeResult(True, f"{host}:{port}: {reply.code} {reply.message.splitlines()[0]}")


async def sleep(seconds: float) -> None:
    """The production sleep; tests pass their own to drive loops step by step."""
    await asyncio.sleep(seconds)
