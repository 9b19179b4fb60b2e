"""The customer REST API: quarantine, sender lists, virus release requests, reports.

Every route needs a bearer token. A customer sees its own domains only; an id
from another domain answers 404 exactly like a missing one. Errors are
``application/problem+json`` (the app installs the handlers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query
from fastapi import Path as PathParam

from filters.lists import domain_of
from quarantine import accounts, reports
from quarantine.api_errors import errors
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
    RequestPage,
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
VIRUS_HINT = (
    "; ask for it with POST /api/v1/quarantine/{id}/release-requests and an operator decides"
)


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

    @router.get("/quarantine", response_model=Page, responses=errors(400, 401, 422))
    async def list_held(
        who: Principal = caller,
        recipient: str | None = Query(None, description="held for this address"),
        sender: str | None = Query(None, description="envelope sender contains this"),
        subject: str | None = Query(None, description="subject contains this"),
        since: Instant | None = Query(None, description="held at or after"),
        until: Instant | None = Query(None, description="held before"),
        kind: Literal["spam", "virus", "content", "unscanned"] | None = Query(
            None, description="why held"
        ),
        min_score: float | None = None,
        max_score: float | None = None,
        state: Literal["held", "released", "deleted"] = "held",
        cursor: str | None = Query(None, description="`next_cursor` of the previous page"),
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Page:
        """Held mail of the caller's domains, newest first, with why each message was held."""
        filters = Filters(
            recipient=recipient, sender=sender, subject=subject,
            since=since.timestamp() if since else None, until=until.timestamp() if until else None,
            kind=kind, min_score=min_score, max_score=max_score, state=state,
        )  # fmt: skip
        try:
            items, nxt = await quarantine.find(who, filters, cursor, limit)
        except ValueError:
            raise HTTPException(400, "malformed cursor") from None
        return Page(items=[HeldOut.of(i) for i in items], next_cursor=nxt)

    @router.get("/quarantine/{held_id}", response_model=HeldDetail,
                responses=errors(401, 404, 422))  # fmt: skip
    async def read_held(held_id: HeldId, who: Principal = caller) -> HeldDetail:
        """One held message: headers, text parts, attachments and every filter hit."""
        found = await guarded(quarantine.get(who, held_id), "message")
        return HeldDetail(**HeldOut.of(found.summary).model_dump(), **detail_of(found))

    @router.post("/quarantine/{held_id}/release", response_model=ReleaseOut,
                 responses=errors(401, 403, 404, 422))  # fmt: skip
    async def release(
        held_id: HeldId,
        body: Annotated[ReleaseIn | None, Body()] = None,
        who: Principal = caller,
    ) -> ReleaseOut:
        """Deliver a held message unfiltered; no body sends it to its original recipients.

        Virus mail is refused (403) to customers: ask for it with
        ``POST /quarantine/{id}/release-requests``. Releasing twice does nothing.
        """
        body = body or ReleaseIn()
        try:
            done = await quarantine.release(who, held_id, body.to, body.reason)
        except NotFound:
            raise HTTPException(404, "no such message") from None
        except Refused as exc:
            detail = str(exc)
            headers = None
            if exc.status == 403 and "never-release" not in detail:
                detail += VIRUS_HINT.format(id=held_id)
                link = f'</api/v1/quarantine/{held_id}/release-requests>; rel="release-request"'
                headers = {"Link": link}
            raise HTTPException(exc.status, detail, headers) from None
        return ReleaseOut(released=done.released, to=list(done.targets), detail=done.detail)

    @router.delete("/quarantine/{held_id}", response_model=DeleteOut,
                   responses=errors(401, 404, 422))  # fmt: skip
    async def delete(held_id: HeldId, who: Principal = caller) -> DeleteOut:
        """Delete a held message now instead of at the end of retention; idempotent."""
        gone = await guarded(quarantine.delete(who, held_id), "message")
        return DeleteOut(deleted=gone, detail="deleted" if gone else "not held; nothing done")

    @router.post("/quarantine/bulk", response_model=BulkOut, responses=errors(401, 422))
    async def bulk(body: BulkIn, who: Principal = caller) -> BulkOut:
        """Release or delete up to 500 messages; each id gets its own status, as if alone."""
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

    @router.post("/quarantine/{held_id}/sender", response_model=list[EntryOut], status_code=201,
                 responses=errors(401, 404, 422))  # fmt: skip
    async def list_sender(
        held_id: HeldId, body: SenderIn, who: Principal = caller
    ) -> list[EntryOut]:
        """Allow or block the message's sender for its recipients (`user`) or their domain."""
        made = await guarded(quarantine.sender_to_list(who, held_id, body.list, body.scope),
                             "message")  # fmt: skip
        return [entry_out(e) for e in made]

    @router.post("/quarantine/{held_id}/release-requests", response_model=RequestOut,
                 status_code=201, responses=errors(401, 403, 404, 409, 422))  # fmt: skip
    async def request_release(
        held_id: HeldId, body: RequestIn, who: Principal = caller
    ) -> RequestOut:
        """Ask an operator to release virus mail; 409 when not a virus or one is pending."""
        made = await guarded(quarantine.request_release(who, held_id, body.reason, body.to),
                             "message")  # fmt: skip
        return request_out(made)

    @router.get("/release-requests", response_model=RequestPage, responses=errors(401, 422))
    async def list_requests(
        who: Principal = caller, status: Literal["pending", "released", "refused"] | None = None
    ) -> RequestPage:
        """Virus release requests of the caller's domains, oldest first."""
        found = await quarantine.release_requests(who, status)
        return RequestPage(items=[request_out(r) for r in found], next_cursor=None)

    @router.post("/release-requests/{request_id}/decision", response_model=RequestOut,
                 responses=errors(401, 403, 404, 409, 422))  # fmt: skip
    async def decide(request_id: str, body: DecisionIn, who: Principal = caller) -> RequestOut:
        """An operator approves (the message is released) or refuses a pending request."""
        done = await guarded(quarantine.decide(who, request_id, body.approve, body.reason),
                             "release request")  # fmt: skip
        return request_out(done)

    @router.get("/lists", response_model=list[EntryOut], responses=errors(401))
    async def list_entries(who: Principal = caller) -> list[EntryOut]:
        """Sender list entries of the caller's domains (the policy file's lists not included)."""
        return [entry_out(e) for e in await quarantine.entries(who)]

    @router.post("/lists", response_model=EntryOut, status_code=201,
                 responses=errors(401, 404, 422))  # fmt: skip
    async def add_entry(body: EntryIn, who: Principal = caller) -> EntryOut:
        """Add a whitelist or blacklist entry; the next message already sees it."""
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

    @router.delete("/lists/{entry_id}", status_code=204, responses=errors(401, 404, 422))
    async def remove_entry(entry_id: EntryId, who: Principal = caller) -> None:
        """Remove a sender list entry."""
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

    @router.get("/accounts", response_model=list[AccountOut], responses=errors(401))
    async def list_accounts(who: Principal = caller) -> list[AccountOut]:
        """Quarantine accounts (one per recipient that had mail held) and their digest choice."""
        domains = None if who.operator else sorted(who.domains)
        return [_account_out(a) for a in await quarantine.read(accounts.find, domains)]

    @router.put("/accounts/{address}", response_model=AccountOut,
                responses=errors(401, 404, 422))  # fmt: skip
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

    @router.get("/reports", response_model=ReportOut, responses=errors(401, 404, 422))
    async def report(
        since: Instant,
        until: Instant,
        who: Principal = caller,
        domain: str | None = Query(None, description="optional when the token covers one domain"),
    ) -> ReportOut:
        """What happened to a domain's mail in [since, until): by action, outcome, stage, symbol,
        and content rules by rule and by user (recipient)."""
        if domain is None:
            if who.operator or len(who.domains) != 1:
                raise HTTPException(422, "give `domain`: this token covers more than one domain")
            (domain,) = who.domains
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
            content_by_rule=dict(sorted(found.content.by_rule.items())),
            content_by_user=found.content.user_table(),
        )  # fmt: skip

    return router
