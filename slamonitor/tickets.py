"""Helpdesk tickets in the store: open with a priority, record the first response, list."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, select, update

from slamonitor.helpdesk import TicketTimes
from slamonitor.periods import Month
from store.sla_tables import tickets


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    domain: str
    priority: str
    subject: str
    opened_by: str
    opened_at: float
    first_response_at: float | None
    responded_by: str | None

    @classmethod
    def of(cls, row: Any) -> Ticket:
        return cls(*(getattr(row, f.name) for f in fields(cls)))

    @property
    def times(self) -> TicketTimes:
        return TicketTimes(self.priority, self.opened_at, self.first_response_at)


def open_ticket(
    conn: Connection, domain: str, priority: str, subject: str, by: str, when: float
) -> Ticket:
    result = conn.execute(
        tickets.insert().values(
            domain=domain, priority=priority, subject=subject, opened_by=by, opened_at=when
        )
    )
    key = result.inserted_primary_key
    assert key is not None, "insert returned no primary key"
    found = get_ticket(conn, int(key[0]))
    assert found is not None
    return found


def get_ticket(conn: Connection, ticket_id: int) -> Ticket | None:
    row = conn.execute(select(tickets).where(tickets.c.id == ticket_id)).first()
    return None if row is None else Ticket.of(row)


def respond(conn: Connection, ticket_id: int, by: str, when: float) -> Ticket | None:
    """Record the first response; later responses do not move it. None: no such ticket."""
    conn.execute(
        update(tickets)
        .where(tickets.c.id == ticket_id, tickets.c.first_response_at.is_(None))
        .values(first_response_at=when, responded_by=by)
    )
    return get_ticket(conn, ticket_id)


def list_tickets(
    conn: Connection,
    domains: frozenset[str] | None,
    *,
    month: Month | None = None,
    priority: str | None = None,
    answered: bool | None = None,
) -> list[Ticket]:
    """Tickets opened in ``month`` (or ever) for ``domains`` (None: all), oldest first."""
    query = select(tickets).order_by(tickets.c.opened_at, tickets.c.id)
    if domains is not None:
        query = query.where(tickets.c.domain.in_(sorted(domains)))
    if month is not None:
        query = query.where(tickets.c.opened_at >= month.start, tickets.c.opened_at < month.end)
    if priority is not None:
        query = query.where(tickets.c.priority == priority)
    if answered is not None:
        column = tickets.c.first_response_at
        query = query.where(column.is_not(None) if answered else column.is_(None))
    return [Ticket.of(r) for r in conn.execute(query)]
