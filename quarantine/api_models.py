"""The REST API's request and response bodies (pydantic: validated in, documented in OpenAPI)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator

from filters.policy import Lists
from quarantine.held import HeldSummary

MAX_BULK = 500


def timestamp(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _representable(value: datetime) -> datetime:
    # Year 1 parses, but a naive one cannot become a UNIX time in every zone (year 0).
    if not 1970 <= value.year <= 9999:
        raise ValueError("year must be between 1970 and 9999")
    return value


Instant = Annotated[datetime, AfterValidator(_representable)]
"""A datetime query parameter the store can compare: out-of-range years get 422, not 500."""


class HeldOut(BaseModel):
    """One held message in a listing, with why it was held."""

    id: str = Field(description="quarantine id, used in every other call")
    domain: str = Field(description="the customer domain it was addressed to")
    sender: str = Field(description="envelope sender (MAIL FROM)")
    recipients: list[str]
    subject: str
    kind: str = Field(description="spam, virus or content")
    score: float = Field(description="the filter's total score, rounded to two decimals")
    why: str = Field(description="the hits that decided, in words (virus names for viruses)")
    viruses: list[str] = Field(description="virus names found, for virus quarantine")
    size: int
    quarantined_at: datetime
    expires_at: datetime
    state: str
    never_release: bool

    @classmethod
    def of(cls, s: HeldSummary) -> HeldOut:
        return cls(
            id=s.id,
            domain=s.domain,
            sender=s.sender,
            recipients=list(s.recipients),
            subject=s.subject,
            kind=s.category,
            score=round(s.score, 2),
            why=s.why,
            viruses=list(s.viruses),
            size=s.size,
            quarantined_at=timestamp(s.quarantined_at),
            expires_at=timestamp(s.expires_at),
            state=s.state,
            never_release=s.never_release,
        )


class Page(BaseModel):
    items: list[HeldOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class HeaderOut(BaseModel):
    name: str
    value: str


class TextPartOut(BaseModel):
    content_type: str
    text: str


class HeldDetail(HeldOut):
    """One held message with what its owner reads before releasing it."""

    # Objects, not (name, value) tuples: a tuple becomes `prefixItems`, which OpenAPI 3.0
    # tools and generated clients reject.
    headers: list[HeaderOut]
    text_parts: list[TextPartOut] = Field(description="text parts, each cut at 100,000 chars")
    attachments: list[dict[str, Any]] = Field(description="filename, type, size, sha256")
    hits: list[dict[str, Any]] = Field(description="every filter hit: symbol, score, reason")


class ReleaseIn(BaseModel):
    """Optional: a release without a body goes to the original recipients."""

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


class RequestPage(BaseModel):
    """Release requests, shaped like the quarantine listing so clients page both alike."""

    items: list[RequestOut]
    next_cursor: str | None = Field(None, description="always null: every match is returned")


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
    content_by_rule: dict[str, int] = Field(
        description="messages each content rule matched (every rule hit is symbol CONTENT_RULE)"
    )
    content_by_user: dict[str, dict[str, int]] = Field(
        description="recipient -> content rule -> messages it matched for that recipient"
    )


def request_out(r: Any) -> RequestOut:
    return RequestOut(
        id=r.id,
        held_id=r.held_id,
        domain=r.domain,
        requested_by=r.requested_by,
        requested_at=timestamp(r.requested_at),
        reason=r.reason,
        to=list(r.targets),
        status=r.status,
        decided_by=r.decided_by,
        decided_at=timestamp(r.decided_at) if r.decided_at else None,
        decision=r.decision,
    )


def entry_out(e: Any) -> EntryOut:
    return EntryOut(
        id=e.id,
        domain=e.domain,
        scope=e.scope,
        owner=e.owner,
        list=e.kind,
        value=e.value,
        created_at=timestamp(e.created_at),
        created_by=e.created_by,
    )
