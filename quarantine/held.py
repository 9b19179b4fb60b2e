"""Held mail: put in quarantine, find, read, release, delete, and purge when its time is up.

Functions take a SQLAlchemy ``Connection`` so the gateway can make them part
of its own transactions (a message is held in the same commit that records
its verdict; a release marks the message and queues its delivery at once).
Retention (SPEC 3): spam 14 days, virus 30 days, from the moment it was held.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.engine import Connection, Row

from store.quarantine_tables import held_recipients, release_requests
from store.schema import deliveries, messages, quarantine


@dataclass(frozen=True, slots=True)
class HeldSummary:
    """One held message as listings show it."""

    id: str
    domain: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    category: str
    score: float
    size: int
    quarantined_at: float
    expires_at: float
    state: str
    never_release: bool
    hits: tuple[dict[str, Any], ...] = ()
    viruses: tuple[str, ...] = ()

    @property
    def why(self) -> str:
        """The hits that decided, in words: what listings, digests and pages show as the reason."""
        deciding = [h for h in self.hits if h.get("action") not in (None, "deliver")]
        shown = "; ".join(f"{h['symbol']}: {h['reason']}" for h in deciding or self.hits)
        if self.viruses:
            shown = f"virus {', '.join(self.viruses)}" + (f"; {shown}" if shown else "")
        return shown or "no hits recorded"


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """A held message with what is needed to show or release it."""

    summary: HeldSummary
    message_id: str
    raw: bytes
    hits: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Filters:
    """Listing filters; every field is optional."""

    recipient: str | None = None
    sender: str | None = None
    subject: str | None = None
    since: float | None = None
    until: float | None = None
    kind: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    state: str = "held"


def summary_of(row: Row[Any]) -> HeldSummary:
    return HeldSummary(
        id=row.id,
        domain=row.domain,
        sender=row.mail_from,
        recipients=tuple(json.loads(row.rcpt_tos)),
        subject=row.subject or "",
        category=row.category,
        score=row.score,
        size=row.size or 0,
        quarantined_at=row.quarantined_at,
        expires_at=row.expires_at,
        state=row.state,
        never_release=bool(row.never_release),
        hits=tuple(json.loads(row.hits)),
        viruses=tuple(json.loads(row.viruses or "[]")),
    )


def _cursor(row: HeldSummary) -> str:
    raw = json.dumps([row.quarantined_at, row.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    """The (time, id) a cursor points after; ValueError for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        when, held_id = json.loads(base64.urlsafe_b64decode(padded))
        return float(when), str(held_id)
    except (ValueError, TypeError) as exc:
        raise ValueError("malformed cursor") from exc


def find(
    conn: Connection,
    domains: Collection[str] | None,
    filters: Filters,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[HeldSummary], str | None]:
    """Newest first, ``limit`` at a time; ``domains`` None means every domain (operators)."""
    query = select(quarantine).where(quarantine.c.state == filters.state)
    if domains is not None:
        query = query.where(quarantine.c.domain.in_(list(domains)))
    if filters.recipient:
        query = query.where(
            exists().where(held_recipients.c.held_id == quarantine.c.id,
                           held_recipients.c.address == filters.recipient.lower())
        )  # fmt: skip
    if filters.sender:
        sender = filters.sender.lower()
        query = query.where(func.lower(quarantine.c.mail_from).contains(sender, autoescape=True))
    if filters.subject:
        subject = filters.subject.lower()
        query = query.where(func.lower(quarantine.c.subject).contains(subject, autoescape=True))
    if filters.since is not None:
        query = query.where(quarantine.c.quarantined_at >= filters.since)
    if filters.until is not None:
        query = query.where(quarantine.c.quarantined_at < filters.until)
    if filters.kind:
        query = query.where(quarantine.c.category == filters.kind)
    if filters.min_score is not None:
        query = query.where(quarantine.c.score >= filters.min_score)
    if filters.max_score is not None:
        query = query.where(quarantine.c.score <= filters.max_score)
    if cursor:
        when, last = _decode_cursor(cursor)
        query = query.where(
            or_(quarantine.c.quarantined_at < when,
                and_(quarantine.c.quarantined_at == when, quarantine.c.id < last))
        )  # fmt: skip
    query = query.order_by(quarantine.c.quarantined_at.desc(), quarantine.c.id.desc())
    rows = [summary_of(r) for r in conn.execute(query.limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (_cursor(rows[-1]) if more and rows else None)


def get(conn: Connection, held_id: str) -> HeldMessage | None:
    row = conn.execute(
        select(quarantine, messages.c.raw)
        .join(messages, messages.c.id == quarantine.c.message_id)
        .where(quarantine.c.id == held_id)
    ).first()  # fmt: skip
    if row is None:
        return None
    summary = summary_of(row)
    return HeldMessage(summary, row.message_id, bytes(row.raw), summary.hits)


def mark(conn: Connection, held_id: str, state: str, now: float) -> bool:
    """Move a held message to ``released`` or ``deleted``; False if it was not held (idempotent)."""
    result = conn.execute(
        update(quarantine)
        .where(quarantine.c.id == held_id, quarantine.c.state == "held")
        .values(state=state, expires_at=now)
    )  # fmt: skip
    return result.rowcount == 1


def purge(conn: Connection, now: float, batch: int = 2000) -> int:
    """Delete up to ``batch`` expired held messages; returns how many (call until 0)."""
    expired = list(
        conn.execute(
            select(quarantine.c.id).where(quarantine.c.expires_at <= now).limit(batch)
        ).scalars()
    )
    if not expired:
        return 0
    conn.execute(delete(release_requests).where(release_requests.c.held_id.in_(expired)))
    conn.execute(delete(held_recipients).where(held_recipients.c.held_id.in_(expired)))
    conn.execute(delete(quarantine).where(quarantine.c.id.in_(expired)))
    return len(expired)


def purge_bodies(conn: Connection, batch: int = 2000) -> int:
    """Drop the bytes of filtered messages nothing needs any more; their records stay.

    A body is needed while a delivery of it is pending or it is held in
    quarantine; after that only the events and delivery records are kept.
    """
    unused = (
        select(messages.c.id)
        .where(messages.c.state == "filtered")
        .where(~exists().where(quarantine.c.message_id == messages.c.id))
        .where(~exists().where(and_(deliveries.c.message_id == messages.c.id,
                                    deliveries.c.state == "pending")))
        .limit(batch)
    )  # fmt: skip
    ids = list(conn.execute(unused).scalars())
    if ids:
        conn.execute(update(messages).where(messages.c.id.in_(ids)).values(raw=b"", state="purged"))
    return len(ids)
