"""Virus alerts (SPEC 3 [5]): who is told that a message carrying a virus was stopped.

A customer (one recipient domain) chooses whom the gateway tells when it
stops an inbound virus: the sender, the intended recipients, both or nobody,
plus an optional administrator. For outbound mail only the sender (the
customer's own user) and the administrator are told, never the foreign
recipient. An alert is a short text notice from ``postmaster@`` with the null
envelope sender: it names the virus and the message, and never carries the
message or any of its parts.

Alerts must not start mail loops or backscatter: no alert goes to a null
sender or a MAILER-DAEMON/postmaster address (``dsn.should_notify``), to the
sender of a message that is itself automatic (RFC 3834 ``Auto-Submitted``, a
delivery report), to a sender whose address is not trustworthy (a block-listed
client, failed SPF or DMARC, a mass-mailing virus, which forges its senders),
or to an address an earlier virus alert bounced from. Pure: the processor
looks the bounced addresses up and stores the alerts in the same
transaction as the message's outcome.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32

from filters.lists import domain_of
from filters.verdict import Category, Verdict
from service.dsn import should_notify
from service.notices import alert_mail
from store.records import DeliveryKind, Direction, NewDelivery, Outcome, Spooled


class AlertTo(enum.StrEnum):
    """Whom a customer's virus alerts go to, besides its administrator."""

    NONE = "none"
    SENDER = "sender"
    RECIPIENT = "recipient"
    BOTH = "both"


class Party(enum.StrEnum):
    """Who one alert is for; the ``party`` label of the alert metric."""

    SENDER = "sender"
    RECIPIENT = "recipient"
    ADMIN = "admin"


class Skipped(enum.StrEnum):
    """Why an alert that the setting asks for was not sent; the ``reason`` metric label."""

    NULL_SENDER = "null_sender"
    MASS_MAILER = "mass_mailer"
    AUTOMATIC = "automatic"
    SUSPECT_SENDER = "suspect_sender"
    BOUNCED = "bounced"


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """One customer's choice: whom to alert and its administrator (None: no admin alert)."""

    to: AlertTo = AlertTo.NONE
    admin: str | None = None


@dataclass(frozen=True, slots=True)
class Planned:
    """The alerts for one message and the ones left out, with why."""

    alerts: list[tuple[Party, NewDelivery]]
    skipped: list[Skipped]


def is_automatic(raw: bytes) -> bool:
    """Whether the message says a machine wrote it (a bounce, an auto-reply): no alert back.

    ``Auto-Submitted`` other than ``no`` (RFC 3834), or a ``multipart/report``
    delivery status report (RFC 3464); read from the header block only.
    """
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[: end if end >= 0 else 65_536])
    auto = str(headers.get("Auto-Submitted", "no")).strip().lower()
    return not auto.startswith("no") or headers.get_content_type() == "multipart/report"


def _wanted(settings: AlertSettings, direction: Direction) -> tuple[bool, bool]:
    """(alert the sender, alert the recipients) for this setting and direction."""
    if settings.to is AlertTo.NONE:
        return False, False
    if direction is Direction.OUTBOUND:
        return True, False  # SPEC 3: for outbound mail only the sender
    both = settings.to is AlertTo.BOTH
    return both or settings.to is AlertTo.SENDER, both or settings.to is AlertTo.RECIPIENT


def _body(message: Spooled, verdict: Verdict, outcome: Outcome, rcpt_tos: tuple[str, ...]) -> str:
    viruses = ", ".join(dict.fromkeys(v.name for v in verdict.viruses)) or "a virus"
    done = (
        "It is held in the virus quarantine for 30 days; an authorised request can release"
        " it to its recipients."
        if outcome is Outcome.QUARANTINED
        else "It was deleted (a mass-mailing virus is never kept)."
    )
    when = datetime.fromtimestamp(message.received_at, UTC).isoformat(timespec="seconds")
    return (
        f"Mailmoat stopped a message because it contains {viruses}.\n\n"
        f"  Queue id:   {message.id}\n"
        f"  Received:   {when} UTC\n"
        f"  From:       {message.mail_from or '<>'}\n"
        f"  To:         {', '.join(rcpt_tos)}\n\n"
        f"{done}\n"
        "This notice does not contain the message or any of its attachments.\n"
    )


def plan(
    message: Spooled,
    rcpt_tos: tuple[str, ...],
    verdict: Verdict,
    outcome: Outcome,
    settings: AlertSettings,
    *,
    hostname: str,
    now: float,
    suspect_sender: bool,
    bounced: Collection[str] = (),
    already: Collection[str] = (),
    direction: Direction = Direction.INBOUND,
) -> Planned:
    """The alerts one customer's setting asks for about one stopped virus.

    ``rcpt_tos`` are the customer's recipients of the message; ``bounced``
    addresses had an earlier virus alert bounce; ``already`` were alerted about
    this message for another domain (each address gets one alert per message).
    Mail that was not stopped as a virus gets none.
    """
    if verdict.category is not Category.VIRUS or outcome not in (
        Outcome.QUARANTINED,
        Outcome.DELETED,
    ):
        return Planned([], [])
    to_sender, to_recipients = _wanted(settings, direction)
    wanted: list[tuple[Party, str]] = []
    skipped: list[Skipped] = []
    if to_sender:
        if not should_notify(message.mail_from, is_spam=False):
            skipped.append(Skipped.NULL_SENDER)
        elif any(v.mass_mailer for v in verdict.viruses):
            skipped.append(Skipped.MASS_MAILER)  # it forges its senders: backscatter
        elif is_automatic(message.raw):
            skipped.append(Skipped.AUTOMATIC)
        elif suspect_sender:
            skipped.append(Skipped.SUSPECT_SENDER)
        else:
            wanted.append((Party.SENDER, message.mail_from))
    if to_recipients:
        wanted += [(Party.RECIPIENT, r) for r in rcpt_tos]
    if settings.admin is not None:
        wanted.append((Party.ADMIN, settings.admin))
    seen = {a.lower() for a in already}
    gone = {a.lower() for a in bounced}
    body = _body(message, verdict, outcome, rcpt_tos)
    sender = f"postmaster@{hostname}"
    alerts: list[tuple[Party, NewDelivery]] = []
    for party, address in wanted:
        key = address.lower()
        if key in seen:
            continue
        seen.add(key)
        if key in gone:
            skipped.append(Skipped.BOUNCED)
            continue
        raw = alert_mail(sender=sender, to=address, subject="Virus alert: a message was stopped",
                         body=body, now=now)  # fmt: skip
        item = NewDelivery(DeliveryKind.VIRUS_ALERT, domain_of(address), "", (address,), body=raw)
        alerts.append((party, item))
    return Planned(alerts, skipped)
