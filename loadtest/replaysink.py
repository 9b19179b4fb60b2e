"""The replay's sink: arrivals and verdict headers by trace, so held mail shows by its absence."""

from __future__ import annotations

import asyncio
import email
from collections.abc import Callable, Iterable

from aiosmtpd.smtp import SMTP, Envelope, Session

from loadtest.sink import TraceSink, trace_of

ACTION_HEADER = "X-Mailmoat-Action"
SYMBOLS_HEADER = "X-Mailmoat-Symbols"
COPY_HEADER = "X-Mailmoat-Copy"
"""A content-rule copy to an admin: not the message's delivery, so not its arrival."""


class ReplaySink(TraceSink):
    """The gateway's downstream: arrivals by trace, plus the verdict headers of each."""

    def __init__(self, host: str, port: int, *, clock: Callable[[], float]) -> None:
        super().__init__(host, port, clock=clock)
        self.verdicts: dict[str, tuple[str | None, tuple[str, ...]]] = {}
        self.copies = 0  # content-rule copies seen (they carry the trace but are not arrivals)
        self._waiting: set[str] = set()
        self._activity = asyncio.Event()  # set by every message that comes in

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        head = email.message_from_bytes(data.split(b"\r\n\r\n", 1)[0])
        if head.get(COPY_HEADER) is not None:
            # A held message's copy would otherwise count as its delivery (a false negative).
            self.received += 1
            self.copies += 1
            self._activity.set()
            return "250 2.0.0 OK copy"
        reply = await super().handle_DATA(server, session, envelope)
        trace = trace_of(data)
        if trace is not None and trace not in self.verdicts:
            symbols = str(head.get(SYMBOLS_HEADER, "")).split(",")
            action = head.get(ACTION_HEADER)
            self.verdicts[trace] = (action, tuple(s.strip() for s in symbols if s.strip()))
        self._waiting.discard(trace or "")
        self._activity.set()
        return reply

    async def drain(self, traces: Iterable[str], timeout: float, idle: float) -> None:
        """Wait until every trace has arrived, ``timeout`` seconds have passed, or nothing has
        come in for ``idle`` seconds: held mail never comes, and waiting the whole timeout for
        it would make every run with a held message last that long."""
        self._waiting = {t for t in traces if t not in self.arrivals}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._waiting and (left := deadline - loop.time()) > 0:
            self._activity.clear()
            try:
                async with asyncio.timeout(min(idle, left)):
                    await self._activity.wait()
            except TimeoutError:
                if idle <= left:
                    return  # quiet for ``idle`` seconds: the gateway has nothing more in flight
