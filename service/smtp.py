"""Inbound SMTP (aiosmtpd): accept mail for registered domains, spool it, then say 250.

Replies follow one table (STYLE 6): 5xx for policy refusals (relaying,
size), 4xx only for our own temporary trouble (too many recipients in this
transaction, store unavailable). Spam is never refused at SMTP time: it is
accepted and then handled by policy, so senders cannot probe the filter.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from filters.lists import domain_of
from service.config import SmtpConfig
from service.metrics import GatewayMetrics, RejectReason
from service.rewrite import received_header
from store.records import Spooled
from store.store import new_queue_id
from store.writer import StoreWriter

log = logging.getLogger("mailmoat.smtp")

RELAY_DENIED = "550 5.7.1 relaying denied"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
NOT_STORED = "451 4.3.0 Message not stored, try again later"
BAD_ADDRESS = "553 5.1.3 Bad recipient address syntax"


class Gatekeeper:
    """The aiosmtpd handler: relay control, recipient limits, durable spooling."""

    def __init__(
        self,
        *,
        domains: frozenset[str],
        config: SmtpConfig,
        writer: StoreWriter,
        submit: Callable[[Spooled], None],
        metrics: GatewayMetrics,
        worker: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.domains = domains
        self.config = config
        self.writer = writer
        self.submit = submit
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
        # aiosmtpd reads commands from a stream, so pipelined commands work; say so.
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        self.metrics.received()
        envelope.mail_from = address
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
        domain = domain_of(address)
        if not domain:
            self.metrics.rejected(RejectReason.SYNTAX)
            return BAD_ADDRESS
        if domain not in self.domains:
            self.metrics.rejected(RejectReason.RELAY_DENIED)
            log.info("relay denied", extra={"rcpt": address, "peer": session.peer})
            return RELAY_DENIED
        if len(envelope.rcpt_tos) >= self.config.max_recipients:
            self.metrics.rejected(RejectReason.RECIPIENTS)
            return TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

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
        message = Spooled(
            id=queue_id,
            received_at=now,
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=trace + content,
            client_ip=peer,
            helo=session.host_name,
            worker=self.worker,
        )
        try:
            await self.writer.spool(message)
        except Exception:  # the client must retry: we never say 250 for what is not on disk
            log.exception("spool failed for %s", queue_id)
            self.metrics.rejected(RejectReason.UNAVAILABLE)
            return NOT_STORED
        self.metrics.accepted()
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
) -> Callable[[], SMTP]:
    """A protocol factory for ``loop.create_server`` with our limits and session accounting."""

    class GatewaySMTP(SMTP):
        line_length_limit = config.max_line_length

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sessions.add(self)
            metrics.session_opened()
            super().connection_made(transport)

        def connection_lost(self, error: Exception | None) -> None:
            if self in sessions:
                sessions.discard(self)
                metrics.session_closed()
            super().connection_lost(error)

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
