"""One SMTP health probe (connect, EHLO, QUIT): the port-25 check and the receiving-server test."""

from __future__ import annotations

import asyncio
import enum
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiosmtplib

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
Servers = Callable[[str], Awaitable[Sequence[tuple[str, int]]]]
"""A domain's receiving servers (its MX hosts, best first); raises ``NoServer``."""


class NoServer(Exception):
    """DNS names no server for the domain (no such domain, null MX, lookup failed)."""


Holds = Callable[[], Awaitable[bool]]
"""Whether this node runs a watcher now (the lease on its job): one node alerts, not all."""


async def always() -> bool:
    """The ``Holds`` of a single node: it always runs its watchers."""
    return True


class Cause(enum.StrEnum):
    """Why a probe failed, in the terms of the customer-side faults the contract exempts."""

    REFUSED = "refused"
    TIMEOUT = "timeout"
    DNS = "dns"
    REJECTED = "rejected"
    LOOP = "loop"
    BROKEN = "broken"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Whether the server took a session, and what it said or why it failed."""

    ok: bool
    detail: str
    cause: Cause | None = None


def probe_cause(exc: BaseException) -> Cause:
    """aiosmtplib wraps the socket error of a failed connect, so look at the cause too."""
    for error in (exc, exc.__cause__):
        if isinstance(error, socket.gaierror):
            return Cause.DNS
        if isinstance(error, ConnectionRefusedError):
            return Cause.REFUSED
        if isinstance(error, TimeoutError | aiosmtplib.SMTPTimeoutError):
            return Cause.TIMEOUT
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return Cause.REJECTED
    return Cause.BROKEN


async def smtp_probe(
    host: str,
    port: int,
    *,
    timeout: float = 10.0,
    helo: str = "mailmoat-probe",
    own_hostname: str | None = None,
) -> ProbeResult:
    """Connect, EHLO and QUIT; any refusal, timeout or non-2xx reply is a failure.

    A server that greets with ``own_hostname`` is this gateway: mail for the
    domain would come straight back, a mail loop.
    """
    client = aiosmtplib.SMTP(
        hostname=host, port=port, timeout=timeout, local_hostname=helo, start_tls=False
    )
    try:
        greeting = await client.connect()
        reply = await client.ehlo()
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return ProbeResult(False, f"{host}:{port}: {type(exc).__name__}: {exc}", probe_cause(exc))
    finally:
        if client.is_connected:
            client.close()
    said = f"{host}:{port}: {reply.code} {reply.message.splitlines()[0]}"
    banner = greeting.message.split(maxsplit=1)[:1]
    if own_hostname is not None and banner and banner[0].lower() == own_hostname.lower():
        return ProbeResult(False, f"{said} (greets as this gateway: mail loop)", Cause.LOOP)
    return ProbeResult(True, said)


async def sleep(seconds: float) -> None:
    """The production sleep; tests pass their own to drive loops step by step."""
    await asyncio.sleep(seconds)
