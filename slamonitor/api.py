"""The SLA monitor's REST endpoints: tickets, accuracy claims, exclusion windows, the summary.

Customers act on their own domains only; an object of another customer's
domain answers 404 like a missing one. Operator-only actions answer 403 to
customers. Reading endpoints are plain functions: FastAPI runs them in its
thread pool, so store reads never block the event loop. Writing endpoints
hand their transaction to the store's writer (``write``), like every other
write, so SQLite sees one writer and a write never races the gateway's. No ``from __future__ import
annotations`` here: FastAPI must see the dependency objects the closures annotate with.
"""

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import Field
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from slamonitor import claims as claim_store
from slamonitor import tickets as ticket_store
from slamonitor.api_common import (
    MONTH,
    Body,
    Decision,
    RowId,
    not_found,
    own,
    require_operator,
    visible,
)
from slamonitor.api_services import create_services_router
from slamonitor.api_windows import create_windows_router
from slamonitor.config import SlaSettings
from slamonitor.periods import Month
from slamonitor.probe import Clock
from slamonitor.report import build
from store.principal import Principal
from store.writer import Write


class NewTicket(Body):
    domain: str = Field(min_length=1, max_length=255)
    priority: str = Field(min_length=1, max_length=32)
    subject: str = Field(min_length=1, max_length=2000)


class MessageRef(Body):
    message_id: str = Field(min_length=1, max_length=32)
    domain: str = Field(min_length=1, max_length=255)


def create_router(
    engine: Engine,
    principal: Callable[..., Principal | Awaitable[Principal]],
    *,
    write: Write,
    clock: Clock,
    settings: SlaSettings | None = None,
) -> APIRouter:
    """Routes under ``/sla``; ``principal`` is the authentication dependency, ``engine``
    serves reads and ``write`` (``StoreWriter.write``) runs every write transaction."""
    config = settings or SlaSettings()
    router = APIRouter(prefix="/sla", tags=["sla"])
    Caller = Annotated[Principal, Depends(principal)]

    @router.post("/tickets", status_code=201)
    async def open_ticket(body: NewTicket, caller: Caller) -> dict[str, Any]:
        """Open a helpdesk ticket; its priority sets the response target."""
        domain = own(caller, body.domain, "domain")
        table = config.table(domain)
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
        month: Annotated[str | None, Query(pattern=MONTH)] = None,
        answered: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Helpdesk tickets of the caller's domains, open or answered."""
        domains = visible(caller)
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
            raise not_found("ticket")
        return ticket

    @router.get("/tickets/{ticket_id}")
    def get_ticket(ticket_id: RowId, caller: Caller) -> dict[str, Any]:
        """One helpdesk ticket with its response times."""
        with engine.connect() as conn:
            return asdict(visible_ticket(caller, ticket_store.get_ticket(conn, ticket_id)))

    @router.post("/tickets/{ticket_id}/response")
    async def respond(ticket_id: RowId, caller: Caller) -> dict[str, Any]:
        """Record the first response to a ticket (operators); stops its clock."""

        def answer(conn: Connection) -> ticket_store.Ticket | None:
            visible_ticket(caller, ticket_store.get_ticket(conn, ticket_id))
            require_operator(caller)
            return ticket_store.respond(conn, ticket_id, caller.name, clock())

        ticket = await write(answer)
        assert ticket is not None
        return asdict(ticket)

    async def file(kind: str, body: MessageRef, caller: Principal) -> dict[str, Any]:
        domain = own(caller, body.domain, "message")
        record = (
            claim_store.record_fp_claim if kind == claim_store.FP else claim_store.record_fn_report
        )
        source = "operator" if caller.operator else "customer"

        def filed(conn: Connection) -> claim_store.Claim | None:
            claim_id = record(conn, body.message_id, domain, caller.name, clock(), source=source)
            return claim_store.get_claim(conn, claim_id)

        try:
            claim = await write(filed)
        except claim_store.ClaimNotFound:
            raise not_found("message") from None
        except claim_store.ClaimConflict as exc:
            raise HTTPException(409, str(exc)) from None
        assert claim is not None
        return asdict(claim)

    @router.post("/claims/false-positives", status_code=201)
    async def report_false_positive(body: MessageRef, caller: Caller) -> dict[str, Any]:
        """A customer reports a message wrongly held: a false-positive claim."""
        return await file(claim_store.FP, body, caller)

    @router.post("/claims/false-negatives", status_code=201)
    async def report_spam(body: MessageRef, caller: Caller) -> dict[str, Any]:
        """A customer reports spam that was delivered: a false-negative claim."""
        return await file(claim_store.FN, body, caller)

    @router.get("/claims")
    def list_claims(
        caller: Caller, kind: Literal["fp", "fn"] | None = None
    ) -> list[dict[str, Any]]:
        """False-positive and false-negative claims of the caller's domains."""
        with engine.connect() as conn:
            return [asdict(c) for c in claim_store.list_claims(conn, kind, visible(caller))]

    async def change(
        claim_id: int, caller: Principal, state: str, reason: str | None
    ) -> dict[str, Any]:
        def moved(conn: Connection) -> claim_store.Claim:
            claim = claim_store.get_claim(conn, claim_id)
            if claim is None or not caller.sees(claim.domain):
                raise not_found("claim")
            if state != "withdrawn":
                require_operator(caller)
            return claim_store.set_state(conn, claim_id, state, caller.name, clock(), reason)

        try:
            updated = await write(moved)
        except claim_store.ClaimConflict as exc:
            raise HTTPException(409, str(exc)) from None
        return asdict(updated)

    @router.get("/claims/{claim_id}")
    def get_claim(claim_id: RowId, caller: Caller) -> dict[str, Any]:
        """One claim and its state."""
        with engine.connect() as conn:
            claim = claim_store.get_claim(conn, claim_id)
        if claim is None or not caller.sees(claim.domain):
            raise not_found("claim")
        return asdict(claim)

    @router.post("/claims/{claim_id}/withdraw")
    async def withdraw(claim_id: RowId, caller: Caller) -> dict[str, Any]:
        """The customer withdraws a claim; it no longer counts."""
        return await change(claim_id, caller, "withdrawn", None)

    @router.post("/claims/{claim_id}/decision")
    async def decide(claim_id: RowId, body: Decision, caller: Caller) -> dict[str, Any]:
        """An operator confirms or rejects a claim; confirmed ones count as errors."""
        return await change(
            claim_id, caller, "confirmed" if body.confirmed else "rejected", body.reason
        )

    @router.get("/summary")
    def summary(
        caller: Caller,
        domain: str | None = None,
        month: Annotated[str | None, Query(pattern=MONTH)] = None,
    ) -> dict[str, Any]:
        """The SLA report of ``month`` (default: the current one, to date)."""
        if domain is None:
            require_operator(caller)
        else:
            domain = own(caller, domain, "domain")
        now = clock()
        period = (
            Month.parse(month, config.timezone) if month else Month.containing(now, config.timezone)
        )
        return build(engine, period, config, now=now, domain=domain).data

    router.include_router(create_windows_router(engine, principal, write=write, clock=clock))
    router.include_router(
        create_services_router(engine, principal, write=write, clock=clock, settings=config)
    )
    return router
