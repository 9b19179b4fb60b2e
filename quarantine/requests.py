"""Virus release requests: a customer asks, an operator authorises or refuses (SPEC 3).

The request is the authorisation record: who asked and why, who decided,
when. Its timestamps let the SLA monitor hold releases to the 8-business-hour
target.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Row

from store.quarantine_tables import release_requests
from store.schema import quarantine


@dataclass(frozen=True, slots=True)
class Request:
    id: str
    held_id: str
    domain: str
    requested_by: str
    requested_at: float
    reason: str
    targets: tuple[str, ...]
    status: str
    decided_by: str | None
    decided_at: float | None
    decision: str | None


_QUERY = select(release_requests, quarantine.c.domain).join(
    quarantine, quarantine.c.id == release_requests.c.held_id
)


def _request(row: Row[Any]) -> Request:
    r = row._mapping
    return Request(
        id=r["id"], held_id=r["held_id"], domain=r["domain"], requested_by=r["requested_by"],
        requested_at=r["requested_at"], reason=r["reason"], targets=tuple(json.loads(r["targets"])),
        status=r["status"], decided_by=r["decided_by"], decided_at=r["decided_at"],
        decision=r["decision"],
    )  # fmt: skip


def create(
    conn: Connection, *, held_id: str, by: str, reason: str, targets: tuple[str, ...], now: float
) -> Request:
    request_id = secrets.token_hex(8)
    conn.execute(
        release_requests.insert().values(
            id=request_id, held_id=held_id, requested_by=by, requested_at=now, reason=reason,
            targets=json.dumps(targets), status="pending",
        )
    )  # fmt: skip
    found = get(conn, request_id)
    assert found is not None
    return found


def get(conn: Connection, request_id: str) -> Request | None:
    row = conn.execute(_QUERY.where(release_requests.c.id == request_id)).first()
    return _request(row) if row is not None else None


def pending_for(conn: Connection, held_id: str) -> Request | None:
    query = _QUERY.where(release_requests.c.held_id == held_id)
    row = conn.execute(query.where(release_requests.c.status == "pending")).first()
    return _request(row) if row is not None else None


def find(conn: Connection, domains: list[str] | None, status: str | None) -> list[Request]:
    query = _QUERY.order_by(release_requests.c.requested_at)
    if domains is not None:
        query = query.where(quarantine.c.domain.in_(domains))
    if status is not None:
        query = query.where(release_requests.c.status == status)
    return [_request(r) for r in conn.execute(query)]


def decide(
    conn: Connection, request_id: str, *, status: str, by: str, decision: str, now: float
) -> bool:
    """Close a pending request as ``released`` or ``refused``; False if it was not pending."""
    result = conn.execute(
        update(release_requests)
        .where(release_requests.c.id == request_id, release_requests.c.status == "pending")
        .values(status=status, decided_by=by, decided_at=now, decision=decision)
    )  # fmt: skip
    return result.rowcount == 1
