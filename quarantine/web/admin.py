"""The domain administrator's page: every user of their domains, what is held, what waits."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from quarantine import accounts
from quarantine.service import NotFound, Refused
from quarantine.web import render
from quarantine.web.access import Access, Visit
from quarantine.web.mailbox import DONE
from store.quarantine_tables import held_recipients
from store.schema import quarantine as held_table


def held_counts(conn: Connection, domains: list[str] | None) -> dict[str, int]:
    """How many messages are held for each recipient of ``domains`` (None: all)."""
    query = (
        select(held_recipients.c.address, func.count())
        .join(held_table, held_table.c.id == held_recipients.c.held_id)
        .where(held_table.c.state == "held")
        .group_by(held_recipients.c.address)
    )
    if domains is not None:
        query = query.where(held_recipients.c.domain.in_(domains))
    return {address: int(n) for address, n in conn.execute(query)}


def create_router(access: Access) -> APIRouter:
    router = APIRouter(prefix="/my", include_in_schema=False)
    quarantine = access.quarantine

    @router.get("/admin")
    async def overview(request: Request) -> Response:
        visit = await access.visit(request)
        if visit is None:
            return RedirectResponse("/my/signin", status_code=303)
        who = visit.viewer.principal
        if visit.viewer.address is not None:
            return render.error(
                request,
                403,
                "This page is for domain administrators",
                "Your own quarantine is on the list page.",
            )
        domains = None if who.operator else sorted(who.domains)
        found = await quarantine.read(accounts.find, domains)
        counts = await quarantine.read(held_counts, domains)
        pending = await quarantine.release_requests(who, "pending")
        return render.page(
            request,
            "admin.html",
            visit=visit,
            accounts=found,
            counts=counts,
            pending=pending,
            done=DONE.get(request.query_params.get("done", "")),
        )

    @router.post("/requests/{request_id}/decision")
    async def decide(
        request: Request,
        request_id: str,
        csrf: str = Form(""),
        decision: str = Form(""),
        reason: str = Form(""),
    ) -> Response:
        """An operator approves (the virus is released) or refuses a release request."""
        visit = await access.posted(request, csrf)
        if not isinstance(visit, Visit):
            return visit
        if decision not in ("approve", "refuse") or not reason.strip():
            return render.error(request, 422, "Nothing was decided",
                                "Say why, then approve or refuse.")  # fmt: skip
        try:
            await quarantine.decide(visit.viewer.principal, request_id[:64],
                                    decision == "approve", reason.strip()[:2000])  # fmt: skip
        except NotFound:
            return render.error(request, 404, "No such release request")
        except Refused as exc:
            return render.error(request, exc.status, "Nothing was decided", str(exc))
        done = "approved" if decision == "approve" else "refused"
        return RedirectResponse(f"/my/admin?done={done}", status_code=303)

    return router
