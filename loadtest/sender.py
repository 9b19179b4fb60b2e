"""SMTP load generator: many messages over a few reused sessions, each stamped with a trace header.

The trace header lets a sink downstream of the server under test match what
arrives to what was sent, so round-trip time is measured per message. Send
start and reply times come from one clock (``time.perf_counter`` unless
told otherwise); a sink in the same process must use the same clock.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import aiosmtplib

TRACE_HEADER = "X-Mailmoat-Trace"
EHLO_NAME = "loadtest.localhost"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to send: raw RFC 5322 bytes and its envelope."""

    data: bytes
    mail_from: str
    rcpt_tos: tuple[str, ...]

    @classmethod
    def from_file(cls, data: bytes, mail_from: str, rcpt_tos: Sequence[str]) -> Outgoing:
        """A message as stored in a corpus file, without the mbox ``From `` line if it has one."""
        if data.startswith(b"From "):
            data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
        return cls(data, mail_from, tuple(rcpt_tos))


@dataclass(frozen=True, slots=True)
class Sent:
    """What happened to one message: its trace, when it started and ended, the final reply."""

    index: int
    trace: str
    started: float  # clock() just before MAIL FROM: the transaction's first byte
    replied: float  # clock() when the final reply (or the failure) came
    code: int  # 0: no reply (connection lost, timeout, refused connection)
    text: str

    @property
    def accepted(self) -> bool:
        return self.code == 250


@dataclass(slots=True)
class SendReport:
    """Every message's outcome, failures counted by reply code (or failure kind), and the span."""

    started: float
    finished: float = 0.0
    results: list[Sent] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def accepted(self) -> int:
        return sum(1 for r in self.results if r.accepted)

    @property
    def elapsed(self) -> float:
        return self.finished - self.started

    @property
    def rate(self) -> float:
        """Accepted messages per second of sending."""
        return self.accepted / self.elapsed if self.elapsed > 0 else 0.0


def stamp(data: bytes, trace: str) -> bytes:
    """``data`` with the trace header as its first line."""
    return f"{TRACE_HEADER}: {trace}\r\n".encode("ascii") + data


async def _session(
    target: tuple[str, int],
    work: Iterator[tuple[int, Outgoing]],
    report: SendReport,
    *,
    run: str,
    timeout: float,
    clock: Callable[[], float],
    on_result: Callable[[Sent], None] | None,
) -> None:
    """One client: take messages until none are left, over one connection while it lasts."""
    smtp = aiosmtplib.SMTP(
        hostname=target[0], port=target[1], timeout=timeout, local_hostname=EHLO_NAME
    )
    try:
        for index, message in work:
            trace = f"{run}-{index}"
            started = clock()
            try:
                if not smtp.is_connected:
                    await smtp.connect()
                    started = clock()  # latency counts from the transaction, not the handshake
                await smtp.mail(message.mail_from)
                for rcpt in message.rcpt_tos:
                    await smtp.rcpt(rcpt)
                reply = await smtp.data(stamp(message.data, trace))
                code, text = reply.code, reply.message
            except aiosmtplib.SMTPResponseException as exc:
                code, text = exc.code, exc.message
                report.errors[str(code)] += 1
                if smtp.is_connected:  # a refused transaction must be reset before the next
                    await _reset(smtp)
            except (aiosmtplib.SMTPException, OSError) as exc:
                code, text = 0, f"{type(exc).__name__}: {exc}"
                report.errors[type(exc).__name__] += 1
                smtp.close()  # the next message reconnects
            sent = Sent(index, trace, started, clock(), code, text)
            report.results.append(sent)
            if on_result is not None:
                on_result(sent)
    finally:
        if smtp.is_connected:
            await _quit(smtp)


async def _reset(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.rset()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.quit()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()


async def send_all(
    target: tuple[str, int],
    messages: Sequence[Outgoing],
    *,
    concurrency: int,
    run: str,
    timeout: float = 60.0,
    clock: Callable[[], float] = time.perf_counter,
    on_result: Callable[[Sent], None] | None = None,
) -> SendReport:
    """Send every message once over ``concurrency`` sessions; traces are ``{run}-{index}``.

    Bounded by ``len(messages)``: a failed message is recorded, not retried, and
    a session whose connection broke reconnects for its next message.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    work = iter(enumerate(messages))  # shared: each session takes the next message
    report = SendReport(started=clock())
    sessions = min(concurrency, len(messages))
    await asyncio.gather(
        *(
            _session(
                target, work, report, run=run, timeout=timeout, clock=clock, on_result=on_result
            )
            for _ in range(sessions)
        )
    )
    report.finished = clock()
    return report
