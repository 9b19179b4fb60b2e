"""Quarantine accounts: one per recipient, created the first time spam is held for it.

An account carries the recipient's notification choice (SPEC 3 [15]): a
daily digest, one every N hours, or none; and when the last digest went out,
so the next lists only what was held since.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from quarantine import held
from store.quarantine_tables import accounts, held_recipients
from store.schema import quarantine

MODES = ("daily", "hours", "never")


@dataclass(frozen=True, slots=True)
class Account:
    address: str
    domain: str
    created_at: float
    notify: str
    every_hours: int | None
    last_digest_at: float | None


@dataclass(frozen=True, slots=True)
class Pending:
    """A held message waiting to appear in one recipient's digest."""

    held_id: str
    message_id: str
    sender: str
    subject: str
    quarantined_at: float
    score: float
    category: str
    why: str
    viruses: tuple[str, ...]


def get(conn: Connection, address: str) -> Account | None:
    row = conn.execute(select(accounts).where(accounts.c.address == address.lower())).first()
    return Account(**row._mapping) if row is not None else None


def find(conn: Connection, domains: list[str] | None) -> list[Account]:
    query = select(accounts).order_by(accounts.c.address)
    if domains is not None:
        query = query.where(accounts.c.domain.in_(domains))
    return [Account(**r._mapping) for r in conn.execute(query)]


def set_notify(conn: Connection, address: str, notify: str, every_hours: int | None) -> bool:
    if notify not in MODES or (notify == "hours") != (every_hours is not None):
        raise ValueError("notify is daily, never, or hours with every_hours")
    result = conn.execute(
        update(accounts)
        .where(accounts.c.address == address.lower())
        .values(notify=notify, every_hours=every_hours)
    )  # fmt: skip
    return result.rowcount == 1


def pending(conn: Connection, account: Account) -> list[Pending]:
    """Mail held for this recipient since its last digest and still held, oldest first."""
    since = account.last_digest_at or 0.0
    rows = conn.execute(
        select(quarantine)
        .join(held_recipients, held_recipients.c.held_id == quarantine.c.id)
        .where(held_recipients.c.address == account.address)
        .where(quarantine.c.state == "held", quarantine.c.quarantined_at > since)
        .order_by(quarantine.c.quarantined_at)
    )  # fmt: skip
    found = []
    for r in rows:
        summary = held.summary_of(r)
        found.append(Pending(r.id, r.message_id, summary.sender, summary.subject,
                             summary.quarantined_at, summary.score, summary.category,
                             summary.why, summary.viruses))  # fmt: skip
    return found


def digest_sent(conn: Connection, address: str, up_to: float, seen: float | None) -> bool:
    """Record a digest covering up to ``up_to``; False when one went out since we read ``seen``.

    The condition makes a digest go out once even if two nodes build it at once.
    """
    result = conn.execute(
        update(accounts)
        .where(accounts.c.address == address)
        .where(accounts.c.last_digest_at.is_not_distinct_from(seen))
        .values(last_digest_at=up_to)
    )
    return result.rowcount == 1
