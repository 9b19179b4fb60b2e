"""Inbound SMTP (aiosmtpd): accept mail for registered domains, spool it, then say 250.

The submission listener (``service/submission.py``) is the same server with
STARTTLS and AUTH required and its own sender and recipient checks.

Replies follow one table (STYLE 6): 5xx for policy refusals (relaying,
size), 4xx only for our own temporary trouble (too many recipients in this
transaction, store unavailable, backlog full, too many sessions). Spam is
never refused at SMTP time: it is accepted and then handled by policy, so
senders cannot probe the filter. Addresses are checked here, once (see
``service/addresses.py``): what passes can be stored and delivered.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, AnyStr, Protocol

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from filters.lists import domain_of
from service import addresses
from service.config import SmtpConfig
from service.metrics import GatewayMetrics, RejectReason
from service.rewrite import received_header
from store.records import Direction, Spooled
from store.store import new_queue_id
from store.writer import StoreWriter

log = logging.getLogger("mailmoat.smtp")

RELAY_DENIED = "550 5.7.1 relaying denied"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
NOT_STORED = "451 4.3.0 Message not stored, try again later"
BACKLOG_FULL = "451 4.3.2 System busy, try again later"
TOO_MANY_SESSIONS = "421 4.7.0 Too many connections, try again later"
TOO_MANY_ERRORS = "421 4.7.0 Too many errors, closing connection"
AUTH_UNAVAILABLE = "502 5.5.1 AUTH not available"
TOO_MANY_AUTH_FAILURES = "421 4.7.0 Too many failed authentication attempts, closing connection"
MAX_ERRORS = 10
"""Syntax-error replies (500/501) one session gets before it is closed with 421."""


class CredentialCheck(Protocol):
    """Checks a login and password (slow by design); returns the account, or None."""

    async def __call__(self, login: bytes, password: bytes) -> object | None: ...


def _decoded(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """aiosmtpd's synchronous authenticator, used only to hand on what PLAIN/LOGIN decoded.

    The real check hashes (about 0.1 s of CPU) and reads the store, so it is
    awaited in ``auth_PLAIN``/``auth_LOGIN`` below, never run on the loop.
    """
    return AuthResult(success=True, auth_data=auth_data)


class Gatekeeper:
    """The aiosmtpd handler: relay control, recipient limits, durable spooling."""

    direction = Direction.INBOUND
    """Which way accepted mail travels: recorded with it, and a metric label."""
    offers_auth = False
    """Port 25 authenticates no one, so AUTH is not listed in the EHLO reply."""

    def __init__(
        self,
        *,
        domains: frozenset[str],
        config: SmtpConfig,
        writer: StoreWriter,
        submit: Callable[[Spooled], None],
        has_room: Callable[[int], bool] = lambda size: True,
        metrics: GatewayMetrics,
        worker: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.domains = domains
        self.config = config
        self.writer = writer
        self.submit = submit
        self.has_room = has_room
        self.metrics = metrics
        self.worker = worker
        self.clock = clock

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        # Offering AUTH where nothing authenticates would only produce 535s.
        kept = [r for r in responses[:-1]
                if self.offers_auth or not r[4:].upper().startswith("AUTH")]  # fmt: skip
        # aiosmtpd reads commands from a stream, so pipelined commands work; say so.
        return [*kept, "250-PIPELINING", responses[-1]]

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        self.metrics.received(self.direction)
        sender = addresses.reverse_path(address)
        if sender is None:
            self.metrics.rejected(RejectReason.SYNTAX, self.direction)
            return addresses.BAD_SENDER
        refusal = self.check_sender(session, sender)
        if refusal is not None:
            return refusal
        if not self.has_room(0):
            self.metrics.rejected(RejectReason.BUSY, self.direction)
            return BACKLOG_FULL
        envelope.mail_from = address  # "<>" stays truthy: aiosmtpd checks it before RCPT
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = addresses.check_recipient(
            address, utf8=envelope.smtp_utf8, allow_routing=self.config.allow_routing_localparts
        )
        if refusal is not None:
            self.metrics.rejected(RejectReason.SYNTAX, self.direction)
            return refusal
        refusal = self.check_recipient(session, address)
        if refusal is not None:
            return refusal
        if len(envelope.rcpt_tos) >= self.config.max_recipients:
            self.metrics.rejected(RejectReason.RECIPIENTS, self.direction)
            return TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    def check_sender(self, session: Session, sender: str) -> str | None:
        """Port 25 takes any well-formed sender: the filter judges it, not the SMTP reply."""
        return None

    def check_recipient(self, session: Session, address: str) -> str | None:
        """Relay control: only the registered domains' users get mail through port 25."""
        if domain_of(address) not in self.domains:
            self.metrics.rejected(RejectReason.RELAY_DENIED, self.direction)
            log.info("relay denied", extra={"rcpt": address, "peer": session.peer})
            return RELAY_DENIED
        return None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        queue_id = new_queue_id()
        now = self.clock()
        peer = session.peer[0] if isinstance(session.peer, tuple) else None
        trace = received_header(
            helo=session.host_name,
            client_ip=peer,
            hostname=self.config.hostname,
            queue_id=queue_id,
            when=now,
        )
        content = envelope.original_content or b""
        if not self.has_room(len(content)):  # bounded memory: refuse before it is taken on
            self.metrics.rejected(RejectReason.BUSY, self.direction)
            return BACKLOG_FULL
        message = Spooled(
            id=queue_id,
            received_at=now,
            mail_from=addresses.reverse_path(envelope.mail_from or "") or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=trace + content,
            client_ip=peer,
            helo=session.host_name,
            worker=self.worker,
            direction=self.direction,
        )
        try:
            await self.writer.spool(message)
        except Exception:  # the client must retry: we never say 250 for what is not on disk
            log.exception("spool failed for %s", queue_id)
            self.metrics.rejected(RejectReason.UNAVAILABLE, self.direction)
            return NOT_STORED
        self.metrics.accepted(self.direction)
        self.submit(message)
        log.debug(
            "accepted",
            extra={
                "queue_id": queue_id,
                "size": len(content),
                "rcpts": len(message.rcpt_tos),
                "peer": peer,
            },
        )
        return f"250 2.0.0 Ok: queued as {queue_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.exception("SMTP session error", exc_info=error)
        return "451 4.3.0 Local error in processing"


def server_factory(
    handler: Gatekeeper,
    config: SmtpConfig,
    metrics: GatewayMetrics,
    sessions: set[SMTP],
    tls: ssl.SSLContext | None,
    *,
    check: CredentialCheck | None = None,
    max_auth_failures: int = 3,
) -> Callable[[], SMTP]:
    """A protocol factory for ``loop.create_server`` with our limits and session accounting.

    With ``check`` (the submission listener) STARTTLS is required before
    anything else, and AUTH PLAIN/LOGIN is offered after it and required
    before MAIL; a session gets ``max_auth_failures`` wrong passwords, then 421.
    """
    direction = handler.direction

    per_client: Counter[str] = Counter()

    class GatewaySMTP(SMTP):
        line_length_limit = config.max_line_length
        client = ""
        refused = False
        errors = 0
        auth_failures = 0

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            peer = transport.get_extra_info("peername")
            self.client = str(peer[0]) if isinstance(peer, tuple) else ""
            if (
                len(sessions) >= config.max_sessions
                or per_client[self.client] >= config.max_sessions_per_client
            ):
                # Refused before aiosmtpd sets up a session: a flood costs one write each.
                self.refused = True
                metrics.rejected(RejectReason.SESSIONS, direction)
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(f"{TOO_MANY_SESSIONS}\r\n".encode())
                transport.close()
                return
            sessions.add(self)
            per_client[self.client] += 1
            metrics.session_opened()
            super().connection_made(transport)

        def connection_lost(self, error: Exception | None) -> None:
            if self.refused:
                return
            if self in sessions:
                sessions.discard(self)
                per_client[self.client] -= 1
                if per_client[self.client] <= 0:
                    del per_client[self.client]
                metrics.session_closed()
            super().connection_lost(error)

        def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
            plain = addresses.split_plain_path(arg)
            if plain is None or len(plain[0].rpartition("@")[0]) > (self.local_part_limit or 2**31):
                return super()._getaddr(arg)  # the parser decides, and refuses
            return plain

        async def smtp_AUTH(self, arg: str) -> None:
            if check is None:  # port 25: nothing here authenticates, say so plainly
                await self.push(AUTH_UNAVAILABLE)
                return
            await super().smtp_AUTH(arg)

        async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
            return await self._checked(await super().auth_PLAIN(server, args))

        async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
            return await self._checked(await super().auth_LOGIN(server, args))

        async def _checked(self, decoded: AuthResult) -> AuthResult:
            if check is None or not decoded.success:
                return decoded
            credentials = decoded.auth_data
            assert isinstance(credentials, LoginPassword)
            account = await check(credentials.login, credentials.password)
            # handled=False: aiosmtpd itself answers 535 5.7.8 to a failure.
            return AuthResult(success=account is not None, handled=False, auth_data=account)

        async def push(self, status: AnyStr) -> None:
            text = status if isinstance(status, str) else status.decode("ascii", "replace")
            if text.startswith(("500", "501")):
                self.errors += 1
                if self.errors > MAX_ERRORS and self.transport is not None:
                    metrics.rejected(RejectReason.COMMANDS, direction)
                    await super().push(TOO_MANY_ERRORS)
                    self.transport.close()
                    return
            elif text.startswith(("530 Must", "538")):
                metrics.rejected(RejectReason.TLS_REQUIRED, direction)
            elif text.startswith("530"):
                metrics.rejected(RejectReason.AUTH_REQUIRED, direction)
            elif text.startswith("535"):
                metrics.rejected(RejectReason.AUTH_FAILED, direction)
                self.auth_failures += 1
                if self.auth_failures >= max_auth_failures and self.transport is not None:
                    await super().push(status)
                    await super().push(TOO_MANY_AUTH_FAILURES)
                    self.transport.close()
                    return
            await super().push(status)

    def build() -> SMTP:
        kwargs: dict[str, Any] = {
            "data_size_limit": config.max_message_size,
            "enable_SMTPUTF8": True,
            "decode_data": False,
            "hostname": config.hostname,
            "ident": "Mailmoat ESMTP",
            "timeout": config.timeout,
            "command_call_limit": call_limits(config),
            "tls_context": tls,
        }
        if check is not None:
            kwargs |= {
                "authenticator": _decoded,
                "auth_require_tls": True,
                "require_starttls": True,
                "auth_required": True,
            }
        return GatewaySMTP(handler, **kwargs)

    return build


def call_limits(config: SmtpConfig) -> dict[str, int]:
    """Per-session command limits: a looping client is cut off, a busy relay is not.

    MAIL, RCPT, DATA and RSET come once per message, so their limits follow
    ``max_messages_per_session``; every other command gets ``max_commands``.
    """
    messages = config.max_messages_per_session
    per_message = {"MAIL": messages, "DATA": messages, "RSET": messages,
                   "RCPT": messages * config.max_recipients}  # fmt: skip
    return {"*": config.max_commands, **per_message}


def tls_context(config: SmtpConfig) -> ssl.SSLContext | None:
    """STARTTLS context from the configured certificate, or None (plain SMTP only)."""
    if config.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context
