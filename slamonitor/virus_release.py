"""Virus release (SPEC 3): an authorised release is delivered within 8 business hours.

The quarantine calls ``record_authorised`` when a release is authorised and
``record_released`` when the message is queued again. The clock runs from
the customer's request (or the operator's own release) to the *delivery* of
the released message, so a release stuck in the queue is late too. Requests
still pending are counted as well: one left unanswered past its deadline
(ignored) is late, like a slow release; a refused request is an answer, so
it is not held to the target.
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, case, func, select, update

from slamonitor.business import BusinessHours
from slamonitor.periods import Month
from store.quarantine_tables import release_requests
from store.records import DeliveryKind, DeliveryState
from store.schema import deliveries, quarantine
from store.sla_tables import virus_releases

HOURS = 8.0
TARGET = 1.0


def record_authorised(conn: Connection, message_id: str, domain: str, by: str, when: float) -> int:
    result = conn.execute(
        virus_releases.insert().values(
            message_id=message_id, domain=domain, authorised_by=by, authorised_at=when
        )
    )
    key = result.inserted_primary_key
    assert key is not None, "insert returned no primary key"
    return int(key[0])


def record_released(conn: Connection, message_id: str, domain: str, when: float) -> bool:
    """Mark the open authorised release of this message done; False if there was none."""
    done = conn.execute(
        update(virus_releases)
        .where(
            virus_releases.c.message_id == message_id,
            virus_releases.c.domain == domain,
            virus_releases.c.released_at.is_(None),
        )
        .values(released_at=when)
    )
    return done.rowcount > 0


def _released(
    conn: Connection, month: Month, domain: str | None
) -> list[tuple[float, float | None]]:
    """(requested, delivered or None) of each release requested in ``month``.

    Delivered means every delivery the release queued has arrived: the time is the last one.
    """
    d = deliveries
    joined = virus_releases.outerjoin(
        d,
        and_(
            d.c.message_id == virus_releases.c.message_id,
            d.c.kind == DeliveryKind.RELEASE,
            d.c.created_at >= virus_releases.c.released_at,
        ),
    )
    arrived = func.sum(case((d.c.state == DeliveryState.DELIVERED, 1), else_=0))
    query = (
        select(
            virus_releases.c.authorised_at, func.count(d.c.id), arrived, func.max(d.c.updated_at)
        )
        .select_from(joined)
        .where(virus_releases.c.authorised_at >= month.start)
        .where(virus_releases.c.authorised_at < month.end)
        .group_by(virus_releases.c.id)
    )
    if domain is not None:
        query = query.where(virus_releases.c.domain == domain)
    return [
        (requested, last if queued and done == queued else None)
        for requested, queued, done, last in conn.execute(query)
    ]


def _unanswered(conn: Connection, month: Month, domain: str | None) -> list[float]:
    """Request times of virus release requests in ``month`` nobody has decided yet."""
    query = (
        select(release_requests.c.requested_at)
        .join(quarantine, quarantine.c.id == release_requests.c.held_id)
        .where(quarantine.c.category == "virus", release_requests.c.status == "pending")
        .where(release_requests.c.requested_at >= month.start)
        .where(release_requests.c.requested_at < month.end)
    )
    if domain is not None:
        query = query.where(quarantine.c.domain == domain)
    return list(conn.execute(query).scalars())


def measure(
    conn: Connection, month: Month, domain: str | None, desk: BusinessHours, now: float
) -> dict[str, object]:
    """Requests of ``month``: delivered in time, late (slow, stuck or ignored), or not yet due."""
    within = late = pending = ignored = undelivered = 0
    for requested, delivered in _released(conn, month, domain):
        due = desk.add(requested, HOURS * 3600.0)
        if delivered is not None and delivered <= due:
            within += 1
        elif delivered is not None or now > due:
            late += 1
            undelivered += delivered is None
        else:
            pending += 1
    for requested in _unanswered(conn, month, domain):
        if now > desk.add(requested, HOURS * 3600.0):
            late += 1
            ignored += 1
        else:
            pending += 1
    share = within / (within + late) if within + late else None
    return {
        "target": TARGET,
        "business_hours": HOURS,
        "measured": share,
        "met": None if share is None else share >= TARGET,
        "within": within,
        "late": late,
        "pending": pending,
        "ignored": ignored,
        "undelivered": undelivered,
    }
