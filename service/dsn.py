"""Delivery status notifications (RFC 3464), so a sender learns why mail did not arrive."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

NO_REPLY = 0
"""``Failure.code`` when no SMTP reply explains the failure (refused connection, timeout)."""

_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})\b")
_LOOP_LOCALPARTS = frozenset({"mailer-daemon", "postmaster"})
# Remote replies can be long; keep every line well under the 998-octet limit.
_MAX_DIAGNOSTIC = 500


@dataclass(frozen=True)
class Failure:
    """Why one recipient did not get the message.

    ``status`` is the RFC 3463 enhanced code (``5.1.1``), ``code`` the SMTP
    reply code or ``NO_REPLY``, ``message`` the server's text or our reason.
    """

    recipient: str
    status: str
    code: int
    message: str

    @property
    def permanent(self) -> bool:
        """A 5.x.x status: retrying cannot help, the sender must be told."""
        return self.status.startswith("5")


def status_from_reply(code: int, message: str) -> str:
    """The enhanced status for a failure reply: the server's own if it gave one, else ``X.0.0``.

    Only 5xx is permanent; any other failing code (4xx, or a nonsensical
    one) is treated as transient, because retrying is the safe mistake.
    """
    kind = "5" if 500 <= code < 600 else "4"
    found = _ENHANCED.match(message.lstrip())
    if found and found.group(1) == kind:
        return found.group(0)
    return f"{kind}.0.0"


def should_notify(mail_from: str, is_spam: bool) -> bool:
    """Whether a failure deserves a DSN to ``mail_from``.

    Never for the null sender (a bounce must not bounce, RFC 5321 4.5.5), nor
    for MAILER-DAEMON or postmaster senders (bounce loops between two
    systems), nor for spam (its sender is forged: the DSN would be
    backscatter to an innocent address).
    """
    sender = mail_from.strip().strip("<>")
    if is_spam or not sender:
        return False
    return sender.rpartition("@")[0].lower() not in _LOOP_LOCALPARTS


def build_dsn(
    *,
    original: bytes,
    mail_from: str,
    failures: Sequence[Failure],
    reporting_mta: str,
    arrival: datetime,
    now: datetime,
    final: bool = True,
) -> bytes:
    """A multipart/report DSN telling ``mail_from`` about ``failures``, as CRLF-terminated bytes.

    ``final`` reports "failed" (we gave up) rather than "delayed" (still
    retrying). The parts are the explanation for people, the
    message/delivery-status fields for programs and the original headers.
    The caller must send it with an empty envelope sender, ``MAIL FROM:<>``
    (RFC 3464 2, RFC 5321 4.5.5), so that it can never itself be bounced.
    Datetimes should be timezone-aware. Output depends only on the arguments
    (the boundary and Message-ID are digests of them), so it can be replayed.
    """
    if not failures:
        raise ValueError("a DSN needs at least one failed recipient")
    addresses = [mail_from, reporting_mta, *(failure.recipient for failure in failures)]
    if any("\r" in text or "\n" in text for text in addresses):
        raise ValueError("line breaks in an address or host name")
    # RFC 6533: a UTF-8 address cannot be written in the rfc822 types.
    utf8 = not all(text.isascii() for text in addresses)
    address_type = "utf-8" if utf8 else "rfc822"
    status_type = "message/global-delivery-status" if utf8 else "message/delivery-status"
    headers_type = "message/global-headers" if utf8 else "text/rfc822-headers"

    digest = hashlib.sha256(original)
    for text in (mail_from, *(str(failure) for failure in failures), now.isoformat(), str(final)):
        digest.update(text.encode("utf-8", "surrogateescape"))
    token = digest.hexdigest()[:32]
    boundary = f"=_mailmoat_dsn_{token}"

    per_message = [
        f"Reporting-MTA: dns; {reporting_mta}",
        f"Arrival-Date: {format_datetime(arrival)}",
    ]
    per_recipient = [_recipient_fields(failure, address_type, final, now) for failure in failures]
    status_body = "\r\n\r\n".join(["\r\n".join(per_message), *per_recipient]) + "\r\n"

    subject = (
        "Undelivered Mail Returned to Sender" if final else "Delayed Mail (still being retried)"
    )
    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{mail_from}>",
        f"Subject: {subject}",
        f"Date: {format_datetime(now)}",
        f"Message-ID: <dsn.{token}@{reporting_mta}>",
        "Auto-Submitted: auto-replied",  # RFC 3834: autoresponders must not answer it
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
    ]
    parts = [
        _part("text/plain; charset=utf-8", _explanation(failures, reporting_mta, final)),
        _part(status_type, status_body.encode("utf-8")),
        _part(headers_type, _header_section(original)),
    ]
    delimiter = f"\r\n--{boundary}\r\n".encode()
    return b"".join(
        [
            "\r\n".join(head).encode("utf-8"),
            b"\r\n\r\nThis is a MIME-encapsulated delivery status notification.\r\n",
            *(delimiter + part for part in parts),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )


def _diagnostic(failure: Failure) -> str:
    text = " ".join(failure.message.split())[:_MAX_DIAGNOSTIC]
    if failure.code == NO_REPLY:
        return f"X-Mailmoat; {text}"
    return f"smtp; {failure.code} {text}"


def _recipient_fields(failure: Failure, address_type: str, final: bool, now: datetime) -> str:
    return "\r\n".join(
        [
            f"Final-Recipient: {address_type}; {failure.recipient}",
            f"Action: {'failed' if final else 'delayed'}",
            f"Status: {failure.status}",
            f"Diagnostic-Code: {_diagnostic(failure)}",
            f"Last-Attempt-Date: {format_datetime(now)}",
        ]
    )


def _explanation(failures: Sequence[Failure], reporting_mta: str, final: bool) -> bytes:
    if final:
        summary = (
            "Your message could not be delivered to the recipients below.\r\n"
            "The mail system has given up; the reasons follow."
        )
    else:
        summary = (
            "Your message has not been delivered yet to the recipients below.\r\n"
            "The mail system will keep trying; you do not need to send it again."
        )
    lines = [f"This is the mail system at {reporting_mta}.", "", summary, ""]
    lines += [f"<{failure.recipient}>: {_diagnostic(failure)}" for failure in failures]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _header_section(original: bytes) -> bytes:
    """The original's header block, with CRLF line ends, without the blank line or body."""
    lines = original.replace(b"\r\n", b"\n").split(b"\n")
    end = lines.index(b"") if b"" in lines else len(lines)
    return b"".join(line + b"\r\n" for line in lines[:end])


def _part(content_type: str, body: bytes) -> bytes:
    # 8bit only when needed: UTF-8 addresses or raw 8-bit original headers.
    encoding = "7bit" if body.isascii() else "8bit"
    return (
        f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n".encode()
        + body
    )
