"""API tokens: random secrets shown once, stored only as SHA-256, revocable.

A token is ``mm_<id>_<secret>``; the id lets an operator name a token to
revoke without ever seeing its secret again.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from store.principal import Principal
from store.quarantine_tables import api_tokens

PREFIX = "mm_"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    name: str
    operator: bool
    domains: tuple[str, ...]
    created_at: float
    revoked_at: float | None


def hash_of(token: str) -> str:
    """What the store keeps of a token (SHA-256), and what a web session remembers of it."""
    return hashlib.sha256(token.encode()).hexdigest()


def create(
    conn: Connection, *, name: str, operator: bool, domains: list[str], now: float
) -> tuple[str, str]:
    """A new token: (id, the secret token to hand over; it is not stored)."""
    if not operator and not domains:
        raise ValueError("a customer token needs at least one domain")
    token_id = secrets.token_hex(4)
    token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    conn.execute(
        api_tokens.insert().values(
            id=token_id, name=name, operator=operator,
            domains=json.dumps(sorted({d.lower().strip(".") for d in domains})),
            token_hash=hash_of(token), created_at=now, revoked_at=None,
        )
    )  # fmt: skip
    return token_id, token


def revoke(conn: Connection, token_id: str, now: float) -> bool:
    result = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )  # fmt: skip
    return result.rowcount == 1


def authenticate(conn: Connection, token: str) -> Principal | None:
    """The principal a presented token stands for, or None (unknown or revoked)."""
    if not token.startswith(PREFIX):
        return None
    return authenticate_hash(conn, hash_of(token))


def authenticate_hash(conn: Connection, token_hash: str) -> Principal | None:
    """The principal of the token with this hash, or None (unknown or revoked)."""
    row = conn.execute(
        select(api_tokens).where(api_tokens.c.token_hash == token_hash)
    ).first()  # fmt: skip
    if row is None or row.revoked_at is not None:
        return None
    return Principal(row.name, bool(row.operator), frozenset(json.loads(row.domains)))


def listing(conn: Connection) -> list[TokenInfo]:
    rows = conn.execute(select(api_tokens).order_by(api_tokens.c.created_at))
    return [
        TokenInfo(r.id, r.name, bool(r.operator), tuple(json.loads(r.domains)), r.created_at,
                  r.revoked_at)
        for r in rows
    ]  # fmt: skip
