"""False-positive claims and "this is spam" reports: the production ground truth for accuracy.

A claim is about one message for one recipient domain. It counts while it
is ``claimed`` or ``confirmed``; an operator may reject it (the contract's
judgement calls: not business mail, not English, a compromised sender...)
and the customer may withdraw it. Releasing spam from quarantine files a
false-positive claim through ``record_fp_claim`` unless the customer says
otherwise (the quarantine calls it, in its own transaction). An operator's
confirmation of a "this is spam" report adds a spam training label, which the
gateway's online learner reads.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, select, update

from store.quarantine_tables import training_labels
from store.schema import events
from store.sla_tables import claims

FP = "fp"
FN = "fn"
COUNTED = ("claimed", "confirmed")
BLOCKED = ("quarantined", "deleted", "redirected")
"""Outcomes that kept a message from its recipients: what a false positive can be."""


class ClaimError(Exception):
    """A claim cannot be filed or changed; the message says why."""


class ClaimNotFound(ClaimError):
    """No such claim, or no such message for that domain."""


class ClaimConflict(ClaimError):
    """The claim does not fit the message (e.g. a false positive for delivered mail)."""


@dataclass(frozen=True, slots=True)
class Claim:
    id: int
    kind: str
    message_id: str
    domain: str
    received_at: float
    state: str
    source: str
    reason: str | None
    created_by: str
    created_at: float
    decided_by: str | None
    decided_at: float | None

    @classmethod
    def of(cls, row: Any) -> Claim:
        return cls(*(getattr(row, f.name) for f in fields(cls)))


def _event(conn: Connection, message_id: str, domain: str) -> Any:
    query = select(events.c.received_at, events.c.outcome, events.c.category).where(
        events.c.message_id == message_id, events.c.domain == domain
    )
    row = conn.execute(query.limit(1)).first()
    if row is None:
        raise ClaimNotFound(f"no message {message_id} for {domain}")
    return row


def _file(
    conn: Connection, kind: str, message_id: str, domain: str, by: str, when: float, source: str
) -> int:
    event = _event(conn, message_id, domain)
    if kind == FP and event.outcome not in BLOCKED:
        raise ClaimConflict(f"message {message_id} was {event.outcome}, not blocked")
    if kind == FN and event.outcome != "delivered":
        raise ClaimConflict(f"message {message_id} was {event.outcome}, not delivered")
    existing = conn.execute(
        select(claims.c.id).where(
            claims.c.kind == kind, claims.c.message_id == message_id, claims.c.domain == domain
        )
    ).scalar()
    if existing is not None:
        # Filing again re-opens a withdrawn claim; a decided one keeps the operator's word.
        conn.execute(
            update(claims)
            .where(claims.c.id == existing, claims.c.state == "withdrawn")
            .values(state="claimed", created_by=by, created_at=when, source=source)
        )
        return int(existing)
    result = conn.execute(
        claims.insert().values(
            kind=kind,
            message_id=message_id,
            domain=domain,
            received_at=event.received_at,
            state="claimed",
            source=source,
            created_by=by,
            created_at=when,
        )
    )
    key = result.inserted_primary_key
    assert key is not None, "insert returned no primary key"
    return int(key[0])


def record_fp_claim(
    conn: Connection, message_id: str, domain: str, by: str, when: float, *, source: str = "release"
) -> int:
    """File (or re-open) a false-positive claim for a blocked message; returns the claim id."""
    return _file(conn, FP, message_id, domain, by, when, source)


def record_fn_report(
    conn: Connection,
    message_id: str,
    domain: str,
    by: str,
    when: float,
    *,
    source: str = "customer",
) -> int:
    """File a "this is spam" report for a delivered message; returns the claim id."""
    return _file(conn, FN, message_id, domain, by, when, source)


def get_claim(conn: Connection, claim_id: int) -> Claim | None:
    row = conn.execute(select(claims).where(claims.c.id == claim_id)).first()
    return None if row is None else Claim.of(row)


def list_claims(conn: Connection, kind: str | None, domains: frozenset[str] | None) -> list[Claim]:
    """Claims, newest first; ``domains`` None means every domain."""
    query = select(claims).order_by(claims.c.created_at.desc(), claims.c.id.desc())
    if kind is not None:
        query = query.where(claims.c.kind == kind)
    if domains is not None:
        query = query.where(claims.c.domain.in_(sorted(domains)))
    return [Claim.of(r) for r in conn.execute(query)]


def set_state(
    conn: Connection, claim_id: int, state: str, by: str, when: float, reason: str | None = None
) -> Claim:
    """Confirm, reject (operator) or withdraw (customer) a claim."""
    if state not in ("confirmed", "rejected", "withdrawn"):
        raise ClaimConflict(f"a claim cannot be set to {state!r}")
    claim = get_claim(conn, claim_id)
    if claim is None:
        raise ClaimNotFound(f"no claim {claim_id}")
    if state == "withdrawn" and claim.state != "claimed":
        raise ClaimConflict(f"claim {claim_id} is {claim.state}; only an open claim is withdrawn")
    conn.execute(
        update(claims)
        .where(claims.c.id == claim_id)
        .values(state=state, decided_by=by, decided_at=when, reason=reason)
    )
    if claim.kind == FN and state == "confirmed" and claim.state != "confirmed":
        # An operator's word that delivered mail was spam: the gateway's model learns it.
        conn.execute(training_labels.insert().values(
            message_id=claim.message_id, label="spam", source="report", created_at=when,
            domain=claim.domain, created_by=by,
        ))  # fmt: skip
    updated = get_claim(conn, claim_id)
    assert updated is not None
    return updated
