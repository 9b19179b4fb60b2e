"""The values the store keeps and hands out: accepted mail, deliveries, events, held mail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """One downstream transaction to make: who to, and how the bytes are changed."""

    kind: str
    domain: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    prefix: bytes = b""
    subject_tag: str | None = None
    body: bytes | None = None
    is_spam: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    """A stored delivery with its retry state."""

    id: int
    message_id: str
    item: NewDelivery
    attempts: int
    created_at: float
    next_attempt_at: float
    received_at: float


@dataclass(frozen=True, slots=True)
class EventRecord:
    """What was decided for one recipient domain of one message (for the SLA monitor)."""

    domain: str
    action: str
    category: str
    outcome: str
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
