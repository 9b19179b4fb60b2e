"""Service start dates: the first 30 days of a customer's service are not measured (SPEC 4)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from slamonitor.exclusions import GRACE_DAYS
from store.sla_tables import services

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Service:
    domain: str
    started_at: float

    @property
    def measured_from(self) -> float:
        return self.started_at + GRACE_DAYS * DAY


def set_start(conn: Connection, domain: str, started_at: float) -> Service:
    """Record (or correct) when ``domain``'s service started."""
    domain = domain.lower()
    exists = conn.execute(select(services.c.domain).where(services.c.domain == domain)).first()
    if exists is None:
        conn.execute(services.insert().values(domain=domain, started_at=started_at))
    else:
        conn.execute(
            services.update().where(services.c.domain == domain).values(started_at=started_at)
        )
    return Service(domain, started_at)


def list_services(conn: Connection, domains: frozenset[str] | None) -> list[Service]:
    query = select(services).order_by(services.c.domain)
    if domains is not None:
        query = query.where(services.c.domain.in_(sorted(domains)))
    return [Service(r.domain, r.started_at) for r in conn.execute(query)]
