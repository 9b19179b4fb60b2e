"""The SLA monitor's REST endpoints: tickets, accuracy claims, exclusion windows, the summary.

Customers act on their own domains only; an object of another customer's
domain answers 404 like a missing one. Operator-only actions answer 403 to
customers. Endpoints are plain functions: FastAPI runs them in its thread
pool, so store reads never block the event loop. No ``from __future__ import
annotations`` here: FastAPI must see the dependency objects the closures annotate with.
"""

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from slamonitor import claims as claim_store
from slamonitor import tickets as ticket_store
from slamonitor.config import SlaSettings
from slamonitor.periods import Month
from slamonitor.probe import Clock
from slamonitor.report import build
from store.principal import Principal
from store.sla_tables import windows
from store.writer import Write

LATEST = 253_402_300_799.0
"""9999-12-31T23:59:59Z: later instants cannot be shown as dates."""
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="row id")]
"""Ids are SQLite INTEGERs: anything larger is a 422, never an overflow."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewTicket(_Body):
    domain: str = Field(min_length=1, max_length=255)
    priority: str = Field(min_length=1, max_length=32)
    subject: str = Field(min_length=1, max_length=2000)


class MessageRef(_Body):
    message_id: str = Field(min_length=1, max_length=32)
    domain: str = Field(min_length=1, max_length=255)


class Decision(_Body):
    confirmed: bool
    reason: str | None = Field(None, max_length=2000)


class NewWindow(_Body):
    kind: Literal["dos", "maintenance", "suspension"]
    start: float = Field(ge=0, le=LATEST, description="UNIX seconds")
    end: float = Field(ge=0, le=LATEST, description="UNIX seconds, after start")
    domain: str | None = Field(None, max_length=255, description="None: every domain")
    reason: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _ordered(self) -> "NewWindow":
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.kind == "suspension" and self.domain is None:
            raise ValueError("a suspension names its domain")
        return self


def _not_found(what: str) -> HTTPException:
    return HTTPException(404, f"no such {what}")


def _operator(principal: Principal) -> None:
    if not principal.operator:
        raise HTTPException(403, "only an operator may do this")


def _visible(principal: Principal) -> frozenset[str] | None:
    return None if principal.operator else principal.domains


def create_router(
    engine: Engine,
    principal: Callable[..., Principal | Awaitable[Principal]],
    *,
    write: Write,
    clock: Clock,
    settings: SlaSettings | None = None,
) -> APIRouter:
    """Routes under ``/sla``; ``principal`` is the authentication dependency.

    Reads use ``engine`` directly; writes go through the store's ``write``.
    """
    config = settings or SlaSettings()
    table = config.table()
    router = APIRouter(prefix="/sla", tags=["sla"])
    Caller = Annotated[Principal, Depends(principal)]

    def own(caller: Principal, domain: str, what: str) -> str:
        domain = domain.lower()
        if not caller.sees(domain):
            raise _not_found(what)
        return domain

    @router.post("/tickets", status_code=201)
    async def open_ticket(body: NewTicket, caller: Caller) -> dict[str, Any]:
        domain = own(caller, body.domain, "domain")
        try:
            priority = table.priority(body.priority).name
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        ticket = await write(
            lambda conn: ticket_store.open_ticket(
                conn, domain, priority, body.subject, caller.name, clock()
            )
        )
        return asdict(ticket) | {"due_at": table.deadline(priority, ticket.opened_at)}

    @router.get("/tickets")
    def list_tickets(
        caller: Caller,
        domain: str | None = None,
        priority: str | None = None,
        month: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None,
        answered: bool | None = None,
    ) -> list[dict[str, Any]]:
        domains = _visible(caller)
        if domain is not None:
            domains = frozenset({own(caller, domain, "domain")})
        period = Month.parse(month, config.timezone) if month else None
        with engine.connect() as conn:
            found = ticket_store.list_tickets(
                conn, domains, month=period, priority=priority, answered=answered
            )
        return [asdict(t) for t in found]

    def visible_ticket(
        caller: Principal, ticket: ticket_store.Ticket | None
    ) -> ticket_store.Ticket:
        if ticket is None or not caller.sees(ticket.domain):
            raise _not_found("ticket")
        return ticket

    @router.get("/tickets/{ticket_id}")
    def get_ticket(ticket_id: RowId, caller: Caller) -> dict[str, Any]:
        with engine.connect() as conn:
            return asdict(visible_ticket(caller, ticket_store.get_ticket(conn, ticket_id)))

    @router.post("/tickets/{ticket_id}/response")
    async def respond(ticket_id: RowId, caller: Caller) -> dict[str, Any]:
        def transaction(conn: Connection) -> ticket_store.Ticket | None:
            visible_ticket(caller, ticket_store.get_ticket(conn, ticket_id))
            _operator(caller)
            return ticket_store.respond(conn, ticket_id, caller.name, clock())

        ticket = await write(transaction)
        assert ticket is not None
        return asdict(ticket)

    async def file(kind: str, body: MessageRef, caller: Principal) -> dict[str, Any]:
        domain = own(caller, body.domain, "message")
        record = (
            claim_store.record_fp_claim if kind == claim_store.FP else claim_store.record_fn_report
        )
        source = "operator" if caller.operator else "customer"

        def transaction(conn: Connection) -> claim_store.Claim | None:
            claim_id = record(conn, body.message_id, domain, caller.name, clock(), source=source)
            return claim_store.get_claim(conn, claim_id)

        try:
            claim = await write(transaction)
        except claim_store.ClaimNotFound:
            raise _not_found("message") from None
        except claim_store.ClaimConflict as exc:
            raise HTTPException(409, str(exc)) from None
        assert claim is not None
        return asdict(claim)

    @router.post("/claims/false-positives", status_code=201)
    async def report_false_positive(body: MessageRef, caller: Caller) -> dict[str, Any]:
        return await file(claim_store.FP, body, caller)

    @router.post("/claims/false-negatives", status_code=201)
    async def report_spam(body: MessageRef, caller: Caller) -> dict[str, Any]:
        return await file(claim_store.FN, body, caller)

    @router.get("/claims")
    def list_claims(
        caller: Caller, kind: Literal["fp", "fn"] | None = None
    ) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            return [asdict(c) for c in claim_store.list_claims(conn, kind, _visible(caller))]

    async def change(
        claim_id: int, caller: Principal, state: str, reason: str | None
    ) -> dict[str, Any]:
        def transaction(conn: Connection) -> claim_store.Claim:
            claim = claim_store.get_claim(conn, claim_id)
            if claim is None or not caller.sees(claim.domain):
                raise _not_found("claim")
            if state != "withdrawn":
                _operator(caller)
            return claim_store.set_state(conn, claim_id, state, caller.name, clock(), reason)

        try:
            updated = await write(transaction)
        except claim_store.ClaimConflict as exc:
            raise HTTPException(409, str(exc)) from None
        return asdict(updated)

    @router.get("/claims/{claim_id}")
    def get_claim(claim_id: RowId, caller: Caller) -> dict[str, Any]:
        with engine.connect() as conn:
            claim = claim_store.get_claim(conn, claim_id)
        if claim is None or not caller.sees(claim.domain):
            raise _not_found("claim")
        return asdict(claim)

    @router.post("/claims/{claim_id}/withdraw")
    async def withdraw(claim_id: RowId, caller: Caller) -> dict[str, Any]:
        return await change(claim_id, caller, "withdrawn", None)

    @router.post("/claims/{claim_id}/decision")
    async def decide(claim_id: RowId, body: Decision, caller: Caller) -> dict[str, Any]:
        return await change(
            claim_id, caller, "confirmed" if body.confirmed else "rejected", body.reason
        )

    @router.post("/windows", status_code=201)
    async def declare_window(body: NewWindow, caller: Caller) -> dict[str, Any]:
        _operator(caller)
        values = body.model_dump() | {"domain": body.domain.lower() if body.domain else None}
        row = {
            "kind": values["kind"],
            "domain": values["domain"],
            "start_at": body.start,
            "end_at": body.end,
            "reason": body.reason,
            "created_by": caller.name,
            "created_at": clock(),
        }
        key = await write(
            lambda conn: conn.execute(windows.insert().values(**row)).inserted_primary_key
        )
        assert key is not None
        return {"id": int(key[0]), **row}

    @router.get("/windows")
    def list_windows(caller: Caller) -> list[dict[str, Any]]:
        _operator(caller)
        with engine.connect() as conn:
            rows = conn.execute(select(windows).order_by(windows.c.start_at)).all()
        return [dict(r._mapping) for r in rows]

    @router.get("/summary")
    def summary(caller: Caller, domain: str | None = None) -> dict[str, Any]:
        if domain is None:
            _operator(caller)
        else:
            domain = own(caller, domain, "domain")
        now = clock()
        report = build(
            engine, Month.containing(now, config.timezone), config, now=now, domain=domain
        )
        return report.data

    return router
