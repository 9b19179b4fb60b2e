"""``/sla/windows`` and ``/sla/notices``: exclusion windows and what customers are told.

Operators declare windows (or confirm the customer faults the probe proposes)
and post notices; customers read the windows and notices for their own
domains and the global ones (the Telstra terms promise an alert on the online
tool for emergency events and maintenance). No ``from __future__ import
annotations``: FastAPI must see the dependency objects the closures annotate.
"""

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import Field, model_validator
from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from slamonitor import faults
from slamonitor.api_common import (
    LATEST,
    Body,
    Decision,
    RowId,
    not_found,
    require_operator,
    visible,
)
from slamonitor.exclusions import DECLARED, PER_DOMAIN, Kind, State
from slamonitor.probe import Clock
from store.principal import Principal
from store.sla_tables import notices, windows
from store.writer import Write

NOTICE_WINDOWS = (Kind.MAINTENANCE, Kind.BEYOND_CONTROL, Kind.SUSPENSION)
"""Confirmed windows of these kinds are also shown to customers as notices."""


class NewWindow(Body):
    kind: Kind = Field(description="one of the declared kinds; outbreaks and grace are derived")
    start: float = Field(ge=0, le=LATEST, description="UNIX seconds")
    end: float = Field(ge=0, le=LATEST, description="UNIX seconds, after start")
    domain: str | None = Field(None, max_length=255, description="None: every domain")
    reason: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _ordered(self) -> "NewWindow":
        if self.kind not in DECLARED:
            raise ValueError(f"{self.kind} windows are derived, not declared")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.kind in PER_DOMAIN and self.domain is None:
            raise ValueError(f"a {self.kind} window names its domain")
        return self


class NewNotice(Body):
    kind: Literal["maintenance", "emergency"]
    start: float = Field(ge=0, le=LATEST, description="UNIX seconds")
    end: float = Field(ge=0, le=LATEST, description="UNIX seconds, after start")
    domain: str | None = Field(None, max_length=255, description="None: every customer")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field("", max_length=10_000)

    @model_validator(mode="after")
    def _ordered(self) -> "NewNotice":
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


def create_windows_router(
    engine: Engine,
    principal: Callable[..., Principal | Awaitable[Principal]],
    *,
    write: Write,
    clock: Clock,
) -> APIRouter:
    """Routes for windows and notices, included under ``/sla`` by ``api.create_router``;
    reads on ``engine``, writes through the store's writer (``write``)."""
    router = APIRouter()
    Caller = Annotated[Principal, Depends(principal)]

    @router.post("/windows", status_code=201)
    async def declare_window(body: NewWindow, caller: Caller) -> dict[str, Any]:
        """Declare an exclusion window (operators); the README lists the kinds."""
        require_operator(caller)
        row = {
            "kind": body.kind,
            "domain": body.domain.lower() if body.domain else None,
            "start_at": body.start,
            "end_at": body.end,
            "reason": body.reason,
            "created_by": caller.name,
            "created_at": clock(),
            "state": State.CONFIRMED,
        }
        key = await write(
            lambda conn: conn.execute(windows.insert().values(**row)).inserted_primary_key
        )
        assert key is not None
        return {"id": int(key[0]), **row, "decided_by": None, "decided_at": None}

    @router.get("/windows")
    def list_windows(caller: Caller, state: State | None = None) -> list[dict[str, Any]]:
        """Exclusion windows of the caller's domains and global ones, by state."""
        with engine.connect() as conn:
            return [asdict(w) for w in faults.listing(conn, visible(caller), state)]

    @router.post("/windows/{window_id}/decision")
    async def decide_window(window_id: RowId, body: Decision, caller: Caller) -> dict[str, Any]:
        """Confirm or reject a proposed window (operators); 409 once decided."""

        def decided(conn: Connection) -> faults.WindowRow:
            found = faults.get(conn, window_id)
            if found is None or not (found.domain is None or caller.sees(found.domain)):
                raise not_found("window")
            require_operator(caller)
            return faults.decide(conn, window_id, body.confirmed, caller.name, clock(), body.reason)

        try:
            decision = await write(decided)
        except faults.WindowConflict as exc:
            raise HTTPException(409, str(exc)) from None
        return asdict(decision)

    @router.post("/notices", status_code=201)
    async def post_notice(body: NewNotice, caller: Caller) -> dict[str, Any]:
        """Post a maintenance or emergency notice (operators) for one domain or all."""
        require_operator(caller)
        row = {
            "kind": body.kind,
            "domain": body.domain.lower() if body.domain else None,
            "start_at": body.start,
            "end_at": body.end,
            "title": body.title,
            "body": body.body,
            "created_by": caller.name,
            "created_at": clock(),
        }
        key = await write(
            lambda conn: conn.execute(notices.insert().values(**row)).inserted_primary_key
        )
        assert key is not None
        return {"id": int(key[0]), "source": "notice", **row}

    @router.get("/notices")
    def list_notices(caller: Caller, current: bool = False) -> list[dict[str, Any]]:
        """Posted notices and confirmed maintenance-like windows, soonest first;
        ``current``: only those not over yet."""
        domains = visible(caller)
        posted = select(notices)
        declared = select(windows).where(
            windows.c.kind.in_([str(k) for k in NOTICE_WINDOWS]),
            windows.c.state == State.CONFIRMED,
        )
        if domains is not None:
            posted = posted.where(notices.c.domain.is_(None) | notices.c.domain.in_(domains))
            declared = declared.where(windows.c.domain.is_(None) | windows.c.domain.in_(domains))
        if current:
            now = clock()
            posted = posted.where(notices.c.end_at > now)
            declared = declared.where(windows.c.end_at > now)
        with engine.connect() as conn:
            found = [{"source": "notice", **r._mapping} for r in conn.execute(posted)]
            found += [
                {
                    "source": "window",
                    "id": r.id,
                    "kind": r.kind,
                    "domain": r.domain,
                    "start_at": r.start_at,
                    "end_at": r.end_at,
                    "title": f"{r.kind.replace('_', ' ')}",
                    "body": r.reason,
                    "created_by": r.created_by,
                    "created_at": r.created_at,
                }
                for r in conn.execute(declared)
            ]
        return sorted(found, key=lambda n: (n["start_at"], n["source"], n["id"]))

    return router
