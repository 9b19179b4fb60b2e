"""The values the store keeps and hands out: accepted mail, deliveries, events, held mail."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class MessageState(StrEnum):
    """Where an accepted message is: waiting for the filter, decided, or its body purged."""

    SPOOLED = "spooled"
    FILTERED = "filtered"
    PURGED = "purged"


class DeliveryKind(StrEnum):
    """Why a delivery exists; spam-free DSN rules and SLA events depend on it."""

    DELIVER = "deliver"
    REDIRECT = "redirect"
    COPY = "copy"
    DSN = "dsn"
    RELEASE = "release"
    DIGEST = "digest"
    NOTIFY = "notify"
    ALERT = "alert"
    VIRUS_ALERT = "virus_alert"


class DeliveryState(StrEnum):
    """A delivery's life: pending until delivered, bounced (5xx) or expired (7 days)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    EXPIRED = "expired"


class Outcome(StrEnum):
    """What became of a message for one recipient domain, as the SLA monitor reads it."""

    DELIVERED = "delivered"
    REDIRECTED = "redirected"
    QUARANTINED = "quarantined"
    DELETED = "deleted"
    BOUNCED = "bounced"
    EXPIRED = "expired"


class Direction(StrEnum):
    """Which way a message travels: to a customer (port 25) or from one (submission)."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True, slots=True)
class Spooled:
    """A message as accepted: envelope and bytes, under its queue id."""

    id: str
    received_at: float
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    client_ip: str | None = None
    helo: str | None = None
    worker: int = 0
    direction: Direction = Direction.INBOUND


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """One downstream transaction to make: who to, and how the bytes are changed."""

    kind: DeliveryKind
    domain: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    prefix: bytes = b""
    subject_tag: str | None = None
    body: bytes | None = None
    is_spam: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    """A stored delivery with its retry state.

    ``raw`` carries the spooled message's bytes from filtering to the first
    attempt, so a fresh delivery does not read back what was just in memory;
    None: read them from the store.
    """

    id: int
    message_id: str
    item: NewDelivery
    attempts: int
    created_at: float
    next_attempt_at: float
    received_at: float
    raw: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """What was decided for one recipient domain of one message (for the SLA monitor)."""

    domain: str
    action: str
    category: str
    outcome: Outcome
    score: float
    symbols: tuple[str, ...]
    hits: tuple[dict[str, Any], ...]
    recipients: int
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Held:
    """A message put in quarantine for one domain's recipients."""

    id: str
    domain: str
    rcpt_tos: tuple[str, ...]
    category: str
    never_release: bool
    score: float
    hits: tuple[dict[str, Any], ...]
    expires_at: float
    subject: str = ""
    viruses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Recorded:
    """What ``record_filtered`` created: deliveries to queue, recipients given a new account."""

    deliveries: list[Delivery]
    new_accounts: list[str]


Notices = Callable[[list[str], float], Sequence[NewDelivery]]
"""Builds the mail telling recipients their quarantine account was opened: (addresses, now)."""


@dataclass(frozen=True, slots=True)
class Filtered:
    """One message's filtering outcome, to be recorded (``Store.record_outcomes``)."""

    message: Spooled
    filtered_at: float
    outcomes: Sequence[tuple[EventRecord, Sequence[NewDelivery], Held | None]]
    quarantine_quota: int = 1_000_000
    notices: Notices | None = None


@dataclass(frozen=True, slots=True)
class Finished:
    """A delivery that ended (delivered, bounced, expired), to be closed (``Store.finish``)."""

    delivery: Delivery
    state: DeliveryState
    now: float
    error: str | None = None
    follow_up: Sequence[NewDelivery] = ()


def _clean(value: str) -> str:
    # Header injection guard: values come from hit reasons and envelopes.
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())[:900]


def header_lines(pairs: Sequence[tuple[str, str]]) -> bytes:
    """Header lines for a delivery's ``prefix``, each value folded onto one clean line."""
    return b"".join(
        f"{name}: {_clean(value)}\r\n".encode("utf-8", "replace") for name, value in pairs
    )
