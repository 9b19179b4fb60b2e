"""Downstream SMTP sink for load tests: notes when each traced message arrives, or drops all.

As the downstream of a gateway under test it records the arrival time of
every trace header (``loadtest.sender`` stamps them), on the caller's event
loop and clock, so round trips are measured in one process. With
``drop=True`` it is a bare aiosmtpd server that answers 250 and keeps
nothing: ``python -m loadtest.sink --port N`` runs it alone as the Python
ceiling of a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import time
from collections.abc import Callable

from aiosmtpd.smtp import SMTP, Envelope, Session

from loadtest.sender import TRACE_HEADER

_TRACE = re.compile(rb"^" + TRACE_HEADER.encode() + rb":[ \t]*(\S+)", re.MULTILINE | re.IGNORECASE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def trace_of(data: bytes) -> str | None:
    """The trace header's value, looked for in the header block only (bodies may quote one)."""
    end = _HEADER_END.search(data)
    found = _TRACE.search(data, 0, end.start() if end else len(data))
    return found.group(1).decode("ascii", "replace") if found else None


class TraceSink:
    """An aiosmtpd server on the running loop; ``await start()``, then ``await stop()``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        drop: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.host = host
        self.port = port
        self.drop = drop
        self.clock = clock
        self.arrivals: dict[str, float] = {}  # trace -> first arrival
        self.received = 0  # every message answered 250: traced or not, repeats, dropped
        self.untraced = 0
        self.repeats = 0  # a trace seen again (copies, or a redelivery)
        self._arrived = asyncio.Event()
        self._sessions: set[SMTP] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        sink, sessions = self, self._sessions

        class _SinkSMTP(SMTP):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sessions.add(self)
                super().connection_made(transport)

            def connection_lost(self, error: Exception | None) -> None:
                sessions.discard(self)
                super().connection_lost(error)

        def build() -> SMTP:
            return _SinkSMTP(
                sink,
                hostname="sink.localhost",
                decode_data=False,
                enable_SMTPUTF8=True,
                data_size_limit=None,
            )

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(build, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and close open sessions."""
        if self._server is None:
            return
        self._server.close()
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        await self._server.wait_closed()
        while self._sessions:  # connection_lost runs on the next loop iterations
            await asyncio.sleep(0)
        self._server = None

    async def wait_for(self, n: int, timeout: float) -> None:
        """Return once ``received`` reaches ``n``; TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while self.received < n:
                self._arrived.clear()
                await self._arrived.wait()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        at = self.clock()
        self.received += 1
        if self.drop:
            return "250 2.0.0 OK dropped"
        trace = trace_of(envelope.original_content or b"")
        if trace is None:
            self.untraced += 1
        elif trace in self.arrivals:
            self.repeats += 1
        else:
            self.arrivals[trace] = at
        self._arrived.set()
        return "250 2.0.0 OK"


async def _serve_until_signal(host: str, port: int) -> None:
    sink = TraceSink(host, port, drop=True)
    await sink.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"sink: SMTP on {host}:{sink.port} (drop)", flush=True)
    await stop.wait()
    await sink.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="a bare aiosmtpd server that accepts and drops")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    args = parser.parse_args()
    asyncio.run(_serve_until_signal(args.host, args.port))


if __name__ == "__main__":
    main()
