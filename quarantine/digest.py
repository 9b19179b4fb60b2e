"""Digest and account-notice emails, and when a digest is due, so recipients can act on held mail.

Everything here is pure: the caller passes the time, the links and the
addresses, and gets RFC 5322 bytes (CRLF line endings) back to send through
the gateway's own delivery path. Subjects and senders of held mail are
attacker-controlled: they are flattened to one line for the text part and
HTML-escaped for the HTML part; they never reach a header.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Final

DIGEST_ACTIONS: Final = (
    ("release", "Release"),
    ("delete", "Delete"),
    ("allow_sender", "Allow sender"),
)
# A virus is never released by its recipient: they ask, an operator decides (SPEC 3).
VIRUS_ACTIONS: Final = (
    ("request_release", "Request release"),
    ("delete", "Delete"),
)
# Mail the filter could not scan is the operator's to release; its owner may only delete it.
UNSCANNED_ACTIONS: Final = (("delete", "Delete"),)
DIGEST_MODES: Final = frozenset({"daily", "hours", "never"})
MAX_FIELD_CHARS: Final = 200
_RETENTION_HINT: Final = "Held messages you do not release are deleted automatically."
# C0/C1 controls and the Unicode line and paragraph separators: anything that could start a line.
_CONTROLS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One held message as a digest shows it."""

    held_id: str
    sender: str
    subject: str
    received_at: float
    score: float
    category: str
    reason: str
    viruses: tuple[str, ...] = ()

    @property
    def actions(self) -> tuple[tuple[str, str], ...]:
        """The links this item offers: no release or allow-sender link can work for a virus."""
        if self.category == "virus":
            return VIRUS_ACTIONS
        return UNSCANNED_ACTIONS if self.category == "unscanned" else DIGEST_ACTIONS

    @property
    def held_as(self) -> str:
        """Why it was held, in a phrase: a virus by its name, anything else with its score."""
        if self.category == "virus":
            names = ", ".join(self.viruses) or "unnamed signature"
            return f"Held as a virus ({names})"
        return f"Held as {self.category} (score {self.score:.1f})"


def render_digest(
    *,
    recipient: str,
    items: Sequence[DigestItem],
    base_url: str,
    link_for: Callable[[str, DigestItem], str],
    sender: str,
    now: float,
    hostname: str,
) -> bytes:
    """The digest for one recipient, newest first, each held message once with its links."""
    unique = list({item.held_id: item for item in reversed(items)}.values())
    if not unique:
        raise ValueError("a digest needs at least one held message; send none instead")
    unique.sort(key=lambda item: (-item.received_at, item.held_id))
    count = f"{len(unique)} message{'s' if len(unique) != 1 else ''}"
    msg = _envelope(
        recipient=recipient,
        sender=sender,
        subject=f"Quarantine digest: {count} held for you",
        now=now,
        hostname=hostname,
        seed="digest\n" + "\n".join(item.held_id for item in unique),
    )
    verb = "was" if len(unique) == 1 else "were"
    text = [f"{count} addressed to {_line(recipient)} {verb} held in quarantine.", ""]
    rows = []
    for item in unique:
        links = [(label, link_for(action, item)) for action, label in item.actions]
        text += _item_text(item, links)
        rows.append(_item_html(item, links))
    text += [f"Manage your quarantine: {base_url}", _RETENTION_HINT]
    msg.set_content("\n".join(text) + "\n")
    msg.add_alternative(
        "<!DOCTYPE html>\n<html><body>\n"
        f"<p>{html.escape(count)} addressed to {_html(recipient)} {verb} held in quarantine.</p>\n"
        '<table border="1" cellpadding="4">\n'
        "<tr><th>Received</th><th>From</th><th>Subject</th><th>Why</th><th>Actions</th></tr>\n"
        + "".join(rows)
        + "</table>\n"
        f'<p><a href="{html.escape(base_url)}">Manage your quarantine</a>. '
        f"{html.escape(_RETENTION_HINT)}</p>\n</body></html>\n",
        subtype="html",
    )
    return msg.as_bytes(policy=SMTP)


def render_notice(
    *,
    recipient: str,
    sender: str,
    base_url: str,
    now: float,
    hostname: str,
    retention_days: int = 14,
) -> bytes:
    """The notice that a quarantine account now exists for the recipient (SPEC 3).

    Every held message to a new address sends one, so the common case (ASCII
    addresses, nothing to fold or encode) is written out directly: the email
    package's header objects cost about 0.7 ms per notice, a third of a held
    message's work in the gateway. Anything else goes through the email package.
    """
    body = _notice_body(recipient, base_url, retention_days)
    plain = _plain_notice(recipient, sender, hostname, now, body)
    if plain is not None:
        return plain
    msg = _envelope(
        recipient=recipient,
        sender=sender,
        subject="Your mail quarantine account was created",
        now=now,
        hostname=hostname,
        seed="notice",
    )
    msg.set_content(body)
    return msg.as_bytes(policy=SMTP)


def _notice_body(recipient: str, base_url: str, retention_days: int) -> str:
    return (
        "\n".join(
            (
                # The address on a line of its own: a line past 78 characters would make the
                # whole body quoted-printable (and the notice slow to build, see above).
                f"Mail addressed to {_line(recipient)}",
                "was held as spam for the first time, so a quarantine account was created",
                "for you.",
                "",
                f"Held spam is kept for {retention_days} days and then deleted.",
                "You will receive digests listing held mail, with links to release or",
                "delete each message or to allow its sender.",
                "",
                f"Review your quarantine and digest settings: {base_url}",
            )
        )
        + "\n"
    )


_PLAIN_ADDRESS: Final = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9.-]+"
)
_PLAIN_HOST: Final = re.compile(r"[A-Za-z0-9.-]+")
_FOLD_AT: Final = 78  # email.policy.SMTP.max_line_length: longer lines are folded or encoded


def _plain_notice(
    recipient: str, sender: str, hostname: str, now: float, body: str
) -> bytes | None:
    """The bytes ``render_notice`` would build through the email package, or None when the
    email package would quote, fold or encode something (then it must do it)."""
    if not (
        _PLAIN_ADDRESS.fullmatch(recipient)
        and _PLAIN_ADDRESS.fullmatch(sender)
        and _PLAIN_HOST.fullmatch(hostname)
        and body.isascii()
    ):
        return None
    digest = hashlib.sha256(f"{recipient}\n{now!r}\nnotice".encode()).hexdigest()[:20]
    headers = (
        f"From: {sender}",
        f"To: {recipient}",
        "Subject: Your mail quarantine account was created",
        f"Date: {format_datetime(datetime.fromtimestamp(now, UTC))}",
        f"Message-ID: <quarantine.{int(now)}.{digest}@{hostname}>",
        "Auto-Submitted: auto-generated",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: 7bit",
        "MIME-Version: 1.0",
    )
    lines = [*headers, "", *body.splitlines()]
    if any(len(line) > _FOLD_AT for line in lines):
        return None  # folded headers, quoted-printable body
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def digest_due(
    *,
    mode: str,
    every_hours: int | None,
    last_sent_at: float | None,
    now: float,
    tz_offset_hours: float = 0,
    send_hour: int = 8,
    opened_at: float | None = None,
) -> bool:
    """Whether a digest should go out now, for modes ``daily``, ``hours`` and ``never``.

    ``daily`` sends once per local calendar day, the first time it is asked at
    or after ``send_hour``; after downtime it sends once, not once per missed day.
    ``hours`` sends when ``every_hours`` have passed since the last digest, or at
    once when there was none.
    ``tz_offset_hours`` is a fixed UTC offset: the caller resolves daylight saving.
    ``opened_at`` (when the account opened) stands in for the last digest until
    there is one, so a new account's first daily digest waits for the next send time.
    """
    if mode not in DIGEST_MODES:
        raise ValueError(f"digest mode must be one of {sorted(DIGEST_MODES)}, got {mode!r}")
    if mode == "never":
        return False
    if mode == "hours":
        if every_hours is None or every_hours < 1:
            raise ValueError(f"digest every_hours must be a positive integer, got {every_hours!r}")
        return last_sent_at is None or now - last_sent_at >= every_hours * 3600
    if not 0 <= send_hour <= 23:
        raise ValueError(f"digest send_hour must be 0..23, got {send_hour!r}")
    if not -14 <= tz_offset_hours <= 14:
        raise ValueError(f"digest tz_offset_hours must be -14..14, got {tz_offset_hours!r}")
    offset = tz_offset_hours * 3600
    local = now + offset
    today_slot = local - local % 86400 + send_hour * 3600  # local seconds
    reference = last_sent_at if last_sent_at is not None else opened_at
    if reference is None:
        return local >= today_slot
    latest_slot = today_slot if local >= today_slot else today_slot - 86400
    return reference + offset < latest_slot


def _envelope(
    *, recipient: str, sender: str, subject: str, now: float, hostname: str, seed: str
) -> EmailMessage:
    """Headers shared by digests and notices; the Message-ID is derived, not random: pure."""
    to_addr, from_addr, host = _address(recipient), _address(sender), _line(hostname)
    if not host or " " in host:
        raise ValueError(f"hostname must be one word, got {hostname!r}")
    digest = hashlib.sha256(f"{to_addr.addr_spec}\n{now!r}\n{seed}".encode()).hexdigest()[:20]
    msg = EmailMessage(policy=SMTP)
    msg["From"] = from_addr
    msg["To"] = to_addr
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    msg["Message-ID"] = f"<quarantine.{int(now)}.{digest}@{host}>"
    # RFC 3834: tells autoresponders and vacation replies not to answer.
    msg["Auto-Submitted"] = "auto-generated"
    return msg


def _address(value: str) -> Address:
    """A header address from a plain addr-spec; CR/LF and display names are refused by parsing."""
    spec = _line(value).strip().removeprefix("<").removesuffix(">")
    return Address(addr_spec=spec)


def _item_text(item: DigestItem, links: list[tuple[str, str]]) -> list[str]:
    lines = [
        f"* {_line(item.subject) or '(no subject)'}",
        f"  From: {_line(item.sender) or '(no sender)'}",
        f"  Received: {_when(item.received_at)}",
        f"  {_line(item.held_as)}: {_line(item.reason)}",
    ]
    lines += [f"  {label}: {url}" for label, url in links]
    return [*lines, ""]


def _item_html(item: DigestItem, links: list[tuple[str, str]]) -> str:
    actions = " | ".join(f'<a href="{html.escape(url)}">{label}</a>' for label, url in links)
    return (
        f"<tr><td>{html.escape(_when(item.received_at))}</td>"
        f"<td>{_html(item.sender)}</td>"
        f"<td>{_html(item.subject) or '(no subject)'}</td>"
        f"<td>{_html(item.held_as)}: {_html(item.reason)}</td>"
        f"<td>{actions}</td></tr>\n"
    )


def _line(value: str) -> str:
    """One line of at most MAX_FIELD_CHARS: controls become spaces, so no text can forge a line."""
    flat = _CONTROLS.sub(" ", value).strip()
    return flat if len(flat) <= MAX_FIELD_CHARS else flat[: MAX_FIELD_CHARS - 1] + "…"


def _html(value: str) -> str:
    return html.escape(_line(value), quote=True)


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")
