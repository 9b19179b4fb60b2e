"""The customer REST API: quarantine, sender lists, virus release requests, reports.

Every route needs a bearer token. A customer sees its own domains only; an id
from another domain answers 404 exactly like a missing one. Errors are
``application/problem+json`` (the app installs the handlers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field, field_validator

from filters.lists import domain_of
from filters.policy import Lists
from quarantine import accounts, reports
from quarantine.held import Filters, HeldSummary
from quarantine.service import NotFound, Quarantine, Refused
from quarantine.views import detail_of
from service.principal import Principal

MAX_BULK = 500
EntryId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="list entry id")]
HeldId = Annotated[str, PathParam(max_length=64, description="quarantine id")]


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class HeldOut(BaseModel):
    id: str
    domain: str
    sender: str
    recipients: list[str]
    subject: str
    kind: str = Field(description="spam, virus or content")
    score: float
    size: int
    quarantined_at: datetime
    expires_at: datetime
    state: str
    never_release: bool

    @classmethod
    def of(cls, s: HeldSummary) -> HeldOut:
        return cls(
            id=s.id, domain=s.domain, sender=s.sender, recipients=list(s.recipients),
            subject=s.subject, kind=s.category, score=s.score, size=s.size,
            quarantined_at=_ts(s.quarantined_at), expires_at=_ts(s.expires_at), state=s.state,
            never_release=s.never_release,
        )  # fmt: skip


class Page(BaseModel):
    items: list[HeldOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class HeldDetail(HeldOut):
    headers: list[tuple[str, str]]
    text_parts: list[dict[str, str]]
    attachments: list[dict[str, Any]]
    hits: list[dict[str, Any]]
    why: str = Field(description="the hits that decided, in words")


class ReleaseIn(BaseModel):
    to: list[str] | None = Field(None, description="default: the original recipients")
    reason: str | None = Field(None, description="required when an operator releases a virus")


class ReleaseOut(BaseModel):
    released: bool
    to: list[str]
    detail: str


class DeleteOut(BaseModel):
    deleted: bool
    detail: str


class BulkIn(BaseModel):
    action: Literal["release", "delete"]
    ids: list[str] = Field(min_length=1, max_length=MAX_BULK)


class BulkOut(BaseModel):
    results: dict[str, dict[str, Any]]


class SenderIn(BaseModel):
    list: Literal["whitelist", "blacklist"]
    scope: Literal["user", "domain"] = "user"


class EntryIn(BaseModel):
    domain: str
    scope: Literal["user", "group", "domain"]
    owner: str | None = Field(None, description="address (user) or group name; not for domain")
    list: Literal["whitelist", "blacklist"]
    value: str = Field(description="sender address or domain")

    @field_validator("value")
    @classmethod
    def _valid(cls, value: str) -> str:
        return Lists(whitelist=[value]).whitelist[0]


class EntryOut(BaseModel):
    id: int
    domain: str
    scope: str
    owner: str
    list: str
    value: str
    created_at: datetime
    created_by: str


class RequestIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    to: list[str] | None = None


class DecisionIn(BaseModel):
    approve: bool
    reason: str = Field(min_length=1, max_length=2000)


class RequestOut(BaseModel):
    id: str
    held_id: str
    domain: str
    requested_by: str
    requested_at: datetime
    reason: str
    to: list[str]
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decision: str | None


class AccountOut(BaseModel):
    address: str
    domain: str
    created_at: datetime
    notify: Literal["daily", "hours", "never"]
    every_hours: int | None
    last_digest_at: datetime | None


class AccountIn(BaseModel):
    notify: Literal["daily", "hours", "never"]
    every_hours: int | None = Field(None, ge=1, le=168, description="with notify = hours")


class ReportOut(BaseModel):
    domain: str
    since: datetime
    until: datetime
    messages: int
    by_action: dict[str, int]
    by_outcome: dict[str, int]
    by_stage: dict[str, int]
    by_symbol: dict[str, int]


def _request_out(r: Any) -> RequestOut:
    return RequestOut(
        id=r.id, held_id=r.held_id, domain=r.domain, requested_by=r.requested_by,
        requested_at=_ts(r.requested_at), reason=r.reason, to=list(r.targets), status=r.status,
        decided_by=r.decided_by, decided_at=_ts(r.decided_at) if r.decided_at else None,
        decision=r.decision,
    )  # fmt: skip


def _entry_out(e: Any) -> EntryOut:
    return EntryOut(
        id=e.id, domain=e.domain, scope=e.scope, owner=e.owner, list=e.kind, value=e.value,
        created_at=_ts(e.created_at), created_by=e.created_by,
    )  # fmt: skip


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
        since: datetime | None = None,
        until: datetime | None = None,
        kind: Literal["spam", "virus", "content"] | None = None,
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
        return [_entry_out(e) for e in made]

    @router.post("/quarantine/{held_id}/release-requests", response_model=RequestOut,
                 status_code=201)  # fmt: skip
    async def request_release(
        held_id: HeldId, body: RequestIn, who: Principal = caller
    ) -> RequestOut:
        made = await guarded(quarantine.request_release(who, held_id, body.reason, body.to),
                             "message")  # fmt: skip
        return _request_out(made)

    @router.get("/release-requests", response_model=list[RequestOut])
    async def list_requests(
        who: Principal = caller, status: Literal["pending", "released", "refused"] | None = None
    ) -> list[RequestOut]:
        return [_request_out(r) for r in await quarantine.release_requests(who, status)]

    @router.post("/release-requests/{request_id}/decision", response_model=RequestOut)
    async def decide(request_id: str, body: DecisionIn, who: Principal = caller) -> RequestOut:
        done = await guarded(quarantine.decide(who, request_id, body.approve, body.reason),
                             "release request")  # fmt: skip
        return _request_out(done)

    @router.get("/lists", response_model=list[EntryOut])
    async def list_entries(who: Principal = caller) -> list[EntryOut]:
        return [_entry_out(e) for e in await quarantine.entries(who)]

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
        return _entry_out(made)

    @router.delete("/lists/{entry_id}", status_code=204)
    async def remove_entry(entry_id: EntryId, who: Principal = caller) -> None:
        await guarded(quarantine.remove_entry(who, entry_id), "list entry")

    def _account_out(a: Any) -> AccountOut:
        return AccountOut(
            address=a.address,
            domain=a.domain,
            created_at=_ts(a.created_at),
            notify=a.notify,
            every_hours=a.every_hours,
            last_digest_at=_ts(a.last_digest_at) if a.last_digest_at else None,
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
        domain: str, since: datetime, until: datetime, who: Principal = caller
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
