"""``/sla/services`` and ``/sla/usage``: when a service started, and registered against used.

An operator records a customer's start date (the first 30 days are not
measured); customers read their own. Usage compares the registered users of
the configuration with the distinct recipients scanned in a month. No ``from
__future__ import annotations``: FastAPI must see the dependency objects.
"""

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field
from sqlalchemy import Engine

from slamonitor import services, usage
from slamonitor.api_common import LATEST, MONTH, Body, own, require_operator, visible
from slamonitor.config import SlaSettings
from slamonitor.periods import Month
from slamonitor.probe import Clock
from store.principal import Principal
from store.writer import Write

Domain = Annotated[str, Path(min_length=1, max_length=255, description="customer domain")]


class ServiceStart(Body):
    started_at: float = Field(ge=0, le=LATEST, description="UNIX seconds the service began")


def create_services_router(
    engine: Engine,
    principal: Callable[..., Principal | Awaitable[Principal]],
    *,
    write: Write,
    clock: Clock,
    settings: SlaSettings,
) -> APIRouter:
    """Routes for service start dates and usage, included under ``/sla``; reads on
    ``engine``, writes through the store's writer (``write``)."""
    router = APIRouter()
    Caller = Annotated[Principal, Depends(principal)]

    @router.put("/services/{domain}")
    async def set_start(domain: Domain, body: ServiceStart, caller: Caller) -> dict[str, Any]:
        """Record a domain's service start (operators); its first 30 days are not measured."""
        domain = own(caller, domain, "domain")
        require_operator(caller)
        service = await write(lambda conn: services.set_start(conn, domain, body.started_at))
        return asdict(service) | {"measured_from": service.measured_from}

    @router.get("/services")
    def list_services(caller: Caller) -> list[dict[str, Any]]:
        """Service start dates of the caller's domains."""
        with engine.connect() as conn:
            found = services.list_services(conn, visible(caller))
        return [asdict(s) | {"measured_from": s.measured_from} for s in found]

    @router.get("/usage")
    def get_usage(
        caller: Caller,
        domain: str | None = None,
        month: Annotated[str | None, Query(pattern=MONTH)] = None,
    ) -> dict[str, Any]:
        """Registered users and distinct scanned recipients per domain for ``month``
        (default: the current one); customers see their own domains."""
        if domain is not None:
            domain = own(caller, domain, "domain")
        period = (
            Month.parse(month, settings.timezone)
            if month
            else Month.containing(clock(), settings.timezone)
        )
        usage.catch_up(engine, settings.timezone)
        with engine.connect() as conn:
            figures = usage.measure(conn, period, domain, settings.registered_users)
        allowed = visible(caller)
        if allowed is not None:
            figures = {d: f for d, f in figures.items() if d in allowed}
        return {"month": period.label, "domains": figures}

    return router
