"""A recording downstream SMTP server on loopback that tests can tell to fail, stop and restart.

It runs aiosmtpd's threaded ``Controller``, so it keeps answering while the
test's own event loop is busy or blocked (a gateway subprocess, a sync
call). Everything it accepts is recorded; ``wait_for`` lets a coroutine on
the test's loop wait for arrivals without polling.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Received:
    """One message the sink answered 250 to after DATA."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...]
    tls: bool
    at: float  # time.time() when accepted


class _Controller(Controller):
    """Binds port 0, then learns the real port before aiosmtpd's readiness probe connects."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class RecordingSink:
    """The customer's mail server in tests: records messages, fails on request.

    Start it from a coroutine (it notes the running loop so ``wait_for`` can
    be woken from the server thread). The port stays the same across
    ``stop()`` / ``start()``, so a route pointing at the sink survives an
    outage.
    """

    def __init__(self, *, tls_context: ssl.SSLContext | None = None, smtputf8: bool = True) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.tls_context = tls_context
        self.smtputf8 = smtputf8
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._rcpt_replies: dict[str, str] = {}
        self._rcpt_reply: str | None = None
        self._data_reply: str | None = None
        self._drop_at_data = False
        self._hold_at_data = False
        self.holding = threading.Event()  # set while a message waits at DATA for release()
        self._controller: _Controller | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived = asyncio.Event()

    # --- running --------------------------------------------------------------------

    def start(self) -> None:
        """Listen (again) on 127.0.0.1; the first start picks an ephemeral port."""
        self._loop = asyncio.get_running_loop()
        controller = _Controller(
            self,
            hostname=self.host,
            port=self.port,
            server_hostname="sink.test",
            tls_context=self.tls_context,
            require_starttls=False,
            enable_SMTPUTF8=self.smtputf8,
        )
        controller.start()
        self.port = controller.port
        self._controller = controller

    def stop(self) -> None:
        """Stop listening and drop open sessions; ``start()`` brings it back on the same port."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    # --- failures on request ----------------------------------------------------------

    def reply_at_rcpt(self, reply: str, recipients: Iterable[str] | None = None) -> None:
        """Answer RCPT with ``reply`` (e.g. ``"550 5.1.1 no such user"``), for these or all."""
        with self._lock:
            if recipients is None:
                self._rcpt_reply = reply
            else:
                self._rcpt_replies.update((rcpt.lower(), reply) for rcpt in recipients)

    def reply_at_data(self, reply: str) -> None:
        """Answer the end of DATA with ``reply`` instead of 250; nothing is recorded."""
        with self._lock:
            self._data_reply = reply

    def drop_at_data(self) -> None:
        """Close the connection after the message arrives, before answering it."""
        with self._lock:
            self._drop_at_data = True

    def hold_at_data(self) -> None:
        """Keep the next messages waiting at the end of DATA, unanswered, until ``release()``."""
        with self._lock:
            self._hold_at_data = True

    def release(self) -> None:
        with self._lock:
            self._hold_at_data = False

    def heal(self) -> None:
        """Forget every failure asked for: accept everything again."""
        with self._lock:
            self._rcpt_replies.clear()
            self._rcpt_reply = self._data_reply = None
            self._drop_at_data = False

    # --- observing --------------------------------------------------------------------

    async def wait_for(self, n: int, timeout: float) -> list[Received]:
        """The received messages once there are at least ``n``; TimeoutError after ``timeout``."""
        async with asyncio.timeout(timeout):
            while True:
                # Cleared before looking: an arrival after the look sets it again.
                self._arrived.clear()
                with self._lock:
                    if len(self.received) >= n:
                        return list(self.received)
                await self._arrived.wait()

    # --- aiosmtpd handler hooks (run on the server thread) ------------------------------

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        with self._lock:
            reply = self._rcpt_replies.get(address.lower(), self._rcpt_reply)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        while self._hold_at_data:
            self.holding.set()
            await asyncio.sleep(0.01)
        self.holding.clear()
        with self._lock:
            drop, reply = self._drop_at_data, self._data_reply
        if drop:
            assert server.transport is not None
            server.transport.close()
            return "421 4.4.2 connection dropped by the test sink"  # never reaches the client
        if reply is not None:
            return reply
        assert envelope.mail_from is not None and envelope.original_content is not None
        message = Received(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=envelope.original_content,
            mail_options=tuple(envelope.mail_options),
            tls=session.ssl is not None,
            at=time.time(),
        )
        with self._lock:
            self.received.append(message)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._arrived.set)
        return "250 2.0.0 OK queued"


def self_signed_context(directory: Path, hostname: str = "localhost") -> ssl.SSLContext:
    """A server TLS context with a throwaway self-signed certificate made by ``openssl``."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", f"/CN={hostname}",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def started_sink(
    *, tls_context: ssl.SSLContext | None = None, smtputf8: bool = True
) -> RecordingSink:
    """A running sink; call from a coroutine (an async fixture) and ``stop()`` it afterwards."""
    sink = RecordingSink(tls_context=tls_context, smtputf8=smtputf8)
    sink.start()
    return sink
