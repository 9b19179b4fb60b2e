"""Virus release (SPEC 3): an authorised release is done within 8 business hours.

The quarantine calls ``record_authorised`` when a release is authorised and
``record_released`` when the message has gone; the report holds each
request to its deadline on the configured business-hours calendar.
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from slamonitor.business import BusinessHours
from slamonitor.periods import Month
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


def measure(
    conn: Connection, month: Month, domain: str | None, desk: BusinessHours, now: float
) -> dict[str, object]:
    """Releases authorised in ``month``: done in time, late, or still within the deadline."""
    query = select(virus_releases.c.authorised_at, virus_releases.c.released_at).where(
        virus_releases.c.authorised_at >= month.start, virus_releases.c.authorised_at < month.end
    )
    if domain is not None:
        query = query.where(virus_releases.c.domain == domain)
    within = late = pending = 0
    for authorised, released in conn.execute(query):
        due = desk.add(authorised, HOURS * 3600.0)
        if released is not None and released <= due:
            within += 1
        elif released is not None or now > due:
            late += 1
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
    }
