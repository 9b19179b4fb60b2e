"""The submission listener (port 587 style): a customer's own users send mail anywhere.

Everything the port-25 listener promises holds here too (durable spool
before 250, the same limits and replies), plus: STARTTLS before anything
else, AUTH PLAIN/LOGIN only after it and before MAIL (RFC 4954, RFC 6409),
accounts per registered domain with scrypt-hashed passwords
(``store/submission_users.py``), a sender that must belong to the signed-in
user's domain (553 5.7.1), and per-user rate limits (450 4.7.1,
``service/ratelimit.py``). What is accepted is spooled as *outbound*: the
filter judges it by the sender domain's policy (anti-virus always) and the
delivery queue hands it to the recipient domain's MX. Without AUTH nothing
is accepted, so this listener is no open relay either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, Session

from filters.lists import domain_of
from service.config import GatewayConfig
from service.metrics import GatewayMetrics, RejectReason
from service.ratelimit import SenderLimits
from service.smtp import Gatekeeper, server_factory, tls_context
from store import submission_users
from store.records import Direction, Spooled
from store.store import Store
from store.writer import StoreWriter

log = logging.getLogger("mailmoat.submission")


@dataclass(frozen=True)
class Account:
    """The signed-in user of a session (aiosmtpd's ``session.auth_data``)."""

    login: str
    domain: str


class Credentials:
    """Checks AUTH credentials against the stored accounts, off the event loop.

    An unknown login costs the same hash as a known one, so replies do not
    tell which logins exist. An account whose domain is no longer registered
    cannot sign in.
    """

    def __init__(self, store: Store, domains: frozenset[str]) -> None:
        self.store = store
        self.domains = domains

    async def __call__(self, login: bytes, password: bytes) -> Account | None:
        try:
            name, secret = login.decode(), password.decode()
        except UnicodeDecodeError:
            return None
        user = await asyncio.to_thread(self.store.read, submission_users.find, name)
        stored = user.password_hash if user is not None else submission_users.DUMMY_HASH
        good = await asyncio.to_thread(submission_users.verify_password, secret, stored)
        if not good or user is None or user.domain not in self.domains:
            log.info("authentication failed", extra={"login": name[:320]})
            return None
        return Account(user.login, user.domain)


class SubmissionGate(Gatekeeper):
    """The port-25 handler with the submission rules: own domain as sender, any recipient."""

    direction = Direction.OUTBOUND
    offers_auth = True  # aiosmtpd lists AUTH only once TLS is up (auth_require_tls)

    def __init__(self, *, limits: SenderLimits, **gatekeeper: Any) -> None:
        super().__init__(**gatekeeper)
        self.limits = limits

    def check_sender(self, session: Session, sender: str) -> str | None:
        account = session.auth_data
        assert isinstance(account, Account), "aiosmtpd requires AUTH before MAIL here"
        if not sender or domain_of(sender) != account.domain:
            self.metrics.rejected(RejectReason.WRONG_SENDER, self.direction)
            log.info("sender refused", extra={"login": account.login, "sender": sender})
            return f"553 5.7.1 Sender address must be in your domain {account.domain}"
        refusal = self.limits.message(account.login)
        if refusal is not None:
            self.metrics.rejected(RejectReason.RATE_LIMITED, self.direction)
            log.warning("message rate limit", extra={"login": account.login})
        return refusal

    def check_recipient(self, session: Session, address: str) -> str | None:
        account = session.auth_data
        assert isinstance(account, Account), "aiosmtpd requires AUTH before RCPT here"
        refusal = self.limits.recipient(account.login)
        if refusal is not None:
            self.metrics.rejected(RejectReason.RATE_LIMITED, self.direction)
            log.warning("recipient rate limit", extra={"login": account.login})
        return refusal


async def listen(
    config: GatewayConfig,
    *,
    store: Store,
    writer: StoreWriter,
    submit: Callable[[Spooled], None],
    has_room: Callable[[int], bool],
    metrics: GatewayMetrics,
    sessions: set[SMTP],
    worker: int = 0,
    clock: Callable[[], float] = time.time,
    reuse_port: bool = False,
) -> asyncio.Server:
    """Start the submission listener on ``[submission] host:port``; the caller closes it."""
    sub = config.submission
    assert sub.port is not None, "listen() is for a configured [submission] port"
    cert, key = config.submission_tls()
    tls = tls_context(config.smtp.model_copy(update={"tls_cert": cert, "tls_key": key}))
    handler = SubmissionGate(
        limits=SenderLimits(
            messages_per_minute=sub.messages_per_minute,
            recipients_per_hour=sub.recipients_per_hour,
            clock=clock,
        ),
        domains=frozenset(config.domains),
        config=config.smtp,
        writer=writer,
        submit=submit,
        has_room=has_room,
        metrics=metrics,
        worker=worker,
        clock=clock,
    )
    factory = server_factory(
        handler, config.smtp, metrics, sessions, tls,
        check=Credentials(store, frozenset(config.domains)),
        max_auth_failures=sub.max_auth_failures,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    return await loop.create_server(factory, sub.host, sub.port, reuse_port=reuse_port)
