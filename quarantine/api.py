"""The customer REST API: quarantine, sender lists, virus release requests, reports.

Every route needs a bearer token. A customer sees its own domains only; an id
from another domain answers 404 exactly like a missing one. Errors are
``application/problem+json`` (the app installs the handlers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam

from filters.lists import domain_of
from quarantine import accounts, reports
from quarantine.api_models import (
    AccountIn,
    AccountOut,
    BulkIn,
    BulkOut,
    DecisionIn,
    DeleteOut,
    EntryIn,
    EntryOut,
    HeldDetail,
    HeldOut,
    Instant,
    Page,
    ReleaseIn,
    ReleaseOut,
    ReportOut,
    RequestIn,
    RequestOut,
    SenderIn,
    entry_out,
    request_out,
    timestamp,
)
from quarantine.held import Filters
from quarantine.service import NotFound, Quarantine, Refused
from quarantine.views import detail_of
from store.principal import Principal

EntryId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="list entry id")]
HeldId = Annotated[str, PathParam(max_length=64, description="quarantine id")]


def create_router(
    quarantine: Quarantine, principal: Callable[..., Awaitable[Principal]]
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["quarantine"])
    caller = Depends(principal)

    async def guarded(call: Awaitable[Any], what: str) -> Any:
        try:
            return await call
        except NotFound:
            raise HTTPException(404, f"no such {what}") from None
        except Refused as exc:
            raise HTTPException(exc.status, str(exc)) from None

    @router.get("/quarantine", response_model=Page)
    async def list_held(
        who: Principal = caller,
        recipient: str | None = None,
        sender: str | None = None,
        since: Instant | None = None,
        until: Instant | None = None,
        kind: Literal["spam", "virus", "content", "unscanned"] | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        state: Literal["held", "released", "deleted"] = "held",
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Page:
        filters = Filters(
            recipient, sender, since.timestamp() if since else None,
            until.timestamp() if until else None, kind, min_score, max_score, state,
        )  # fmt: skip
        try:
            items, nxt = await quarantine.find(who, filters, cursor, limit)
        except ValueError:
            raise HTTPException(400, "malformed cursor") from None
        return Page(items=[HeldOut.of(i) for i in items], next_cursor=nxt)

    @router.get("/quarantine/{held_id}", response_model=HeldDetail)
    async def read_held(held_id: HeldId, who: Principal = caller) -> HeldDetail:
        found = await guarded(quarantine.get(who, held_id), "message")
        return HeldDetail(**HeldOut.of(found.summary).model_dump(), **detail_of(found))

    @router.post("/quarantine/{held_id}/release", response_model=ReleaseOut)
    async def release(held_id: HeldId, body: ReleaseIn, who: Principal = caller) -> ReleaseOut:
        done = await guarded(quarantine.release(who, held_id, body.to, body.reason), "message")
        return ReleaseOut(released=done.released, to=list(done.targets), detail=done.detail)

    @router.delete("/quarantine/{held_id}", response_model=DeleteOut)
    async def delete(held_id: HeldId, who: Principal = caller) -> DeleteOut:
        gone = await guarded(quarantine.delete(who, held_id), "message")
        return DeleteOut(deleted=gone, detail="deleted" if gone else "not held; nothing done")

    @router.post("/quarantine/bulk", response_model=BulkOut)
    async def bulk(body: BulkIn, who: Principal = caller) -> BulkOut:
        results: dict[str, dict[str, Any]] = {}
        for held_id in dict.fromkeys(body.ids):
            try:
                if body.action == "release":
                    done = await quarantine.release(who, held_id, None)
                    results[held_id] = {"status": 200, "done": done.released, "detail": done.detail}
                else:
                    gone = await quarantine.delete(who, held_id)
                    results[held_id] = {"status": 200, "done": gone,
                                        "detail": "deleted" if gone else "not held"}  # fmt: skip
            except NotFound:
                results[held_id] = {"status": 404, "done": False, "detail": "no such message"}
            except Refused as exc:
                results[held_id] = {"status": exc.status, "done": False, "detail": str(exc)}
        return BulkOut(results=results)

    @router.post("/quarantine/{held_id}/sender", response_model=list[EntryOut], status_code=201)
    async def list_sender(
        held_id: HeldId, body: SenderIn, who: Principal = caller
    ) -> list[EntryOut]:
        made = await guarded(quarantine.sender_to_list(who, held_id, body.list, body.scope),
                             "message")  # fmt: skip
        return [entry_out(e) for e in made]

    @router.post("/quarantine/{held_id}/release-requests", response_model=RequestOut,
                 status_code=201)  # fmt: skip
    async def request_release(
        held_id: HeldId, body: RequestIn, who: Principal = caller
    ) -> RequestOut:
        made = await guarded(quarantine.request_release(who, held_id, body.reason, body.to),
                             "message")  # fmt: skip
        return request_out(made)

    @router.get("/release-requests", response_model=list[RequestOut])
    async def list_requests(
        who: Principal = caller, status: Literal["pending", "released", "refused"] | None = None
    ) -> list[RequestOut]:
        return [request_out(r) for r in await quarantine.release_requests(who, status)]

    @router.post("/release-requests/{request_id}/decision", response_model=RequestOut)
    async def decide(request_id: str, body: DecisionIn, who: Principal = caller) -> RequestOut:
        done = await guarded(quarantine.decide(who, request_id, body.approve, body.reason),
                             "release request")  # fmt: skip
        return request_out(done)

    @router.get("/lists", response_model=list[EntryOut])
    async def list_entries(who: Principal = caller) -> list[EntryOut]:
        return [entry_out(e) for e in await quarantine.entries(who)]

    @router.post("/lists", response_model=EntryOut, status_code=201)
    async def add_entry(body: EntryIn, who: Principal = caller) -> EntryOut:
        domain = body.domain.lower().strip(".")
        owner = domain if body.scope == "domain" else (body.owner or "").strip().lower()
        if body.scope == "user" and domain_of(owner) != domain:
            raise HTTPException(422, "a user entry's owner must be an address in the domain")
        if body.scope == "group" and not owner:
            raise HTTPException(422, "a group entry needs the group name as owner")
        made = await guarded(
            quarantine.add_entry(who, domain=domain, scope=body.scope, owner=owner,
                                 kind=body.list, value=body.value),
            "domain",
        )  # fmt: skip
        return entry_out(made)

    @router.delete("/lists/{entry_id}", status_code=204)
    async def remove_entry(entry_id: EntryId, who: Principal = caller) -> None:
        await guarded(quarantine.remove_entry(who, entry_id), "list entry")

    def _account_out(a: Any) -> AccountOut:
        return AccountOut(
            address=a.address,
            domain=a.domain,
            created_at=timestamp(a.created_at),
            notify=a.notify,
            every_hours=a.every_hours,
            last_digest_at=timestamp(a.last_digest_at) if a.last_digest_at else None,
        )

    @router.get("/accounts", response_model=list[AccountOut])
    async def list_accounts(who: Principal = caller) -> list[AccountOut]:
        domains = None if who.operator else sorted(who.domains)
        return [_account_out(a) for a in await quarantine.read(accounts.find, domains)]

    @router.put("/accounts/{address}", response_model=AccountOut)
    async def set_account(address: str, body: AccountIn, who: Principal = caller) -> AccountOut:
        """How the recipient hears about held mail: daily digest, every N hours, or never."""
        if (body.notify == "hours") != (body.every_hours is not None):
            raise HTTPException(422, "every_hours goes with notify = hours, and only with it")
        found = await quarantine.read(accounts.get, address)
        if found is None or not who.sees(found.domain):
            raise HTTPException(404, "no such account")
        await quarantine.write(accounts.set_notify, address, body.notify, body.every_hours)
        updated = await quarantine.read(accounts.get, address)
        assert updated is not None
        return _account_out(updated)

    @router.get("/reports", response_model=ReportOut)
    async def report(
        domain: str, since: Instant, until: Instant, who: Principal = caller
    ) -> ReportOut:
        if not who.sees(domain):
            raise HTTPException(404, "no such domain")
        if until <= since:
            raise HTTPException(422, "`until` must be after `since`")
        found = await quarantine.read(reports.build, domain.lower(), since.timestamp(),
                                      until.timestamp())  # fmt: skip
        return ReportOut(
            domain=found.domain, since=since, until=until, messages=found.messages,
            by_action=dict(found.by_action), by_outcome=dict(found.by_outcome),
            by_stage=dict(found.by_stage), by_symbol=dict(found.by_symbol),
        )  # fmt: skip

    return router
