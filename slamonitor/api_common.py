"""What the SLA routers share: body base class, id and time bounds, who may see and do what."""

from typing import Annotated

from fastapi import HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field

from store.principal import Principal

LATEST = 253_402_300_799.0
"""9999-12-31T23:59:59Z: later instants cannot be shown as dates."""
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="row id")]
"""Ids are SQLite INTEGERs: anything larger is a 422, never an overflow."""
MONTH = r"^(19[7-9]\d|[2-9]\d{3})-(0[1-9]|1[0-2])$"
"""YYYY-MM from 1970 on: year 0 would raise deep in date arithmetic (a 500), not a 422."""


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Decision(Body):
    """An operator's word on a claim or a proposed window."""

    confirmed: bool
    reason: str | None = Field(None, max_length=2000)


def not_found(what: str) -> HTTPException:
    return HTTPException(404, f"no such {what}")


def require_operator(principal: Principal) -> None:
    if not principal.operator:
        raise HTTPException(403, "only an operator may do this")


def visible(principal: Principal) -> frozenset[str] | None:
    """The domains a caller may read; None: every domain (an operator)."""
    return None if principal.operator else principal.domains


def own(caller: Principal, domain: str, what: str) -> str:
    """``domain`` lower-cased if the caller sees it; a 404 naming ``what`` otherwise."""
    domain = domain.lower()
    if not caller.sees(domain):
        raise not_found(what)
    return domain
