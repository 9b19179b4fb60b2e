"""Outbound SMTP: hand a message to the customer's server and say, per recipient, what happened."""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiosmtplib

from service.dsn import NO_REPLY, Failure, status_from_reply
from service.routing import Route

NO_ANSWER = "4.4.1"
"""RFC 3463 status when no server would hold a session (refused, unreachable, timed out)."""

BAD_CONNECTION = "4.4.2"
"""RFC 3463 status when a session broke or timed out in the middle of a transaction."""

UTF8_REQUIRED = "5.6.7"
"""RFC 6531 3.2 status: a UTF-8 address, and the server does not offer SMTPUTF8."""

# Every way aiosmtplib reports a network or protocol failure: its own tree,
# plus OSError for socket and TLS errors (ssl.SSLError, TimeoutError).
_SMTP_ERRORS = (aiosmtplib.SMTPException, OSError)


class Kind(enum.StrEnum):
    """The summary of an outcome; act on the per-recipient lists, not on this alone."""

    DELIVERED = "delivered"  # every recipient accepted
    PARTIAL = "partial"  # some accepted, some failed (retry or bounce those)
    TEMPORARY = "temporary"  # none accepted, some worth retrying (4xx, network)
    PERMANENT = "permanent"  # none accepted and every one refused for good (5xx)


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt achieved, per recipient.

    Retry the ``temporary`` recipients later; send a DSN for the
    ``permanent`` ones. ``route`` is the server that answered the
    transaction, None when no route would hold a session.
    """

    delivered: tuple[str, ...]
    temporary: tuple[Failure, ...]
    permanent: tuple[Failure, ...]
    route: Route | None

    @property
    def kind(self) -> Kind:
        if not self.temporary and not self.permanent:
            return Kind.DELIVERED
        if self.delivered:
            return Kind.PARTIAL
        return Kind.TEMPORARY if self.temporary else Kind.PERMANENT


async def deliver(
    routes: Sequence[Route],
    mail_from: str,
    rcpt_tos: Sequence[str],
    data: bytes,
    *,
    helo: str,
    timeout: float,
    starttls: bool = True,
    verify_certs: bool = False,
    pool: SessionPool | None = None,
) -> Outcome:
    """Send ``data`` as-is to the first route that holds a session; never raises for SMTP results.

    Routes are tried in order while connecting, greeting, EHLO or STARTTLS
    fails (RFC 5321 5.1). Once a transaction starts, that server's replies
    decide: 2xx delivered, 5xx permanent, anything else temporary, each
    recipient on its own RCPT reply. A session that breaks mid-transaction
    is temporary and is not moved to the next route, because the server may
    already hold the message; retrying later risks one duplicate, never a loss.

    TLS is opportunistic by default (RFC 7435): STARTTLS when the server
    offers it, without checking its certificate, since customer servers
    often present certificates that do not match their names and encryption
    still defeats passive eavesdropping. ``verify_certs`` turns checking on;
    ``starttls=False`` never upgrades. With a ``pool``, sessions are reused.

    ``timeout`` bounds each network step (connecting, each command, the data
    transfer) in seconds. BODY=8BITMIME and SMTPUTF8 are declared when the
    server offers them and the message needs them; 8-bit data goes unchanged
    to servers that do not offer 8BITMIME (rewriting would break DKIM).
    """
    if not routes or not rcpt_tos:
        raise ValueError("deliver needs at least one route and one recipient")
    recipients = list(dict.fromkeys(rcpt_tos))
    reasons: list[str] = []
    last_code = NO_REPLY  # the reply code of the last route tried, if it sent one
    for route in routes:
        smtp = await pool.take(route) if pool is not None else None
        if smtp is None:
            smtp = aiosmtplib.SMTP(
                hostname=route.host,
                port=route.port,
                local_hostname=helo,
                timeout=timeout,
                start_tls=None if starttls else False,  # None: only if offered
                validate_certs=verify_certs,
            )
            try:
                await smtp.connect()
                if smtp.is_ehlo_or_helo_needed:
                    await smtp.ehlo()
            except _SMTP_ERRORS as exc:
                smtp.close()
                reasons.append(f"{route}: {_describe(exc)}")
                last_code = (
                    exc.code if isinstance(exc, aiosmtplib.SMTPResponseException) else NO_REPLY
                )
                continue
        outcome = await _transact(smtp, route, mail_from, recipients, data)
        if pool is not None and smtp.is_connected and outcome.kind is not Kind.TEMPORARY:
            pool.give(route, smtp)
        else:
            if smtp.is_connected:
                # The outcome is decided; a failed goodbye changes nothing.
                with contextlib.suppress(*_SMTP_ERRORS):
                    await smtp.quit()
            smtp.close()
        return outcome
    # Even a 5xx greeting is only this host's state, not a verdict on the
    # recipient (as Postfix's smtp_skip_5xx_greeting): keep retrying.
    reason = "; ".join(reasons)
    failures = tuple(Failure(rcpt, NO_ANSWER, last_code, reason) for rcpt in recipients)
    return Outcome(delivered=(), temporary=failures, permanent=(), route=None)


class SessionPool:
    """Idle outbound sessions per route, reused for the next message to the same server.

    A new TCP connection, greeting, EHLO and QUIT per message cost more than
    the transaction itself on a busy gateway. A session is taken back only
    after a clean transaction, checked with RSET before reuse (a server may
    have closed it while idle), and dropped after ``idle_seconds``.
    """

    def __init__(
        self, *, per_route: int = 8, idle_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.per_route = per_route
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._idle: dict[Route, list[tuple[float, aiosmtplib.SMTP]]] = {}

    async def take(self, route: Route) -> aiosmtplib.SMTP | None:
        """A live idle session to ``route``, or None (then the caller connects)."""
        idle = self._idle.get(route, [])
        while idle:
            since, smtp = idle.pop()
            if self.clock() - since > self.idle_seconds or not smtp.is_connected:
                smtp.close()
                continue
            try:
                await smtp.rset()
            except _SMTP_ERRORS:
                smtp.close()
                continue
            return smtp
        return None

    def give(self, route: Route, smtp: aiosmtplib.SMTP) -> None:
        idle = self._idle.setdefault(route, [])
        if len(idle) >= self.per_route:
            smtp.close()
            return
        idle.append((self.clock(), smtp))

    def close(self) -> None:
        for idle in self._idle.values():
            for _, smtp in idle:
                smtp.close()
        self._idle.clear()


async def _transact(
    smtp: aiosmtplib.SMTP, route: Route, mail_from: str, recipients: list[str], data: bytes
) -> Outcome:
    """MAIL, one RCPT per recipient, DATA if any was accepted; classify every reply."""
    options = _mail_options(smtp, data)
    utf8 = not all(address.isascii() for address in [mail_from, *recipients])
    if utf8 and not smtp.supports_extension("smtputf8"):
        reason = "the server does not offer SMTPUTF8, needed for a UTF-8 address"
        failures = [Failure(rcpt, UTF8_REQUIRED, NO_REPLY, reason) for rcpt in recipients]
        return _outcome([], failures, route)
    if utf8 and "SMTPUTF8" not in options:
        options.append("SMTPUTF8")
    encoding = "utf-8" if utf8 else "ascii"

    refused: dict[str, Failure] = {}
    try:
        await smtp.mail(mail_from, options=options, encoding=encoding)
        for rcpt in recipients:
            try:
                await smtp.rcpt(rcpt, encoding=encoding)
            except aiosmtplib.SMTPRecipientRefused as exc:
                refused[rcpt] = _failure(rcpt, exc)
        if len(refused) < len(recipients):
            await smtp.data(data)
    except _SMTP_ERRORS as exc:
        # MAIL or DATA refused, or the session broke: every recipient not
        # already refused on its own shares this failure.
        return _outcome(
            [], [refused.get(rcpt) or _failure(rcpt, exc) for rcpt in recipients], route
        )
    delivered = [rcpt for rcpt in recipients if rcpt not in refused]
    return _outcome(delivered, list(refused.values()), route)


def _mail_options(smtp: aiosmtplib.SMTP, data: bytes) -> list[str]:
    options = []
    if smtp.supports_extension("size"):
        # RFC 1870: lets the server refuse an oversized message before the transfer.
        options.append(f"SIZE={len(data)}")
    if smtp.supports_extension("8bitmime") and not data.isascii():
        options.append("BODY=8BITMIME")
    header = data.partition(b"\r\n\r\n")[0]
    if smtp.supports_extension("smtputf8") and not header.isascii():
        options.append("SMTPUTF8")  # RFC 6532 UTF-8 header fields
    return options


def _failure(recipient: str, exc: BaseException) -> Failure:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return Failure(recipient, status_from_reply(exc.code, exc.message), exc.code, exc.message)
    return Failure(recipient, BAD_CONNECTION, NO_REPLY, _describe(exc))


def _outcome(delivered: list[str], failures: list[Failure], route: Route) -> Outcome:
    return Outcome(
        delivered=tuple(delivered),
        temporary=tuple(f for f in failures if not f.permanent),
        permanent=tuple(f for f in failures if f.permanent),
        route=route,
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    return str(exc) or type(exc).__name__
