"""Submission accounts: who may send mail out through the gateway, per customer domain.

Passwords are kept only as scrypt hashes (``hashlib.scrypt``, RFC 7914) in a
self-describing string ``scrypt$n$r$p$salt$hash`` so the cost can be raised
later without breaking stored accounts. A login name is unique across
customers: AUTH carries only the name, and it must say whose user it is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from store.schema import submission_users

SCRYPT_N = 2**14
"""CPU/memory cost (16 MiB with r=8): about 0.1 s a check, far too slow to guess at scale."""
SCRYPT_R = 8
SCRYPT_P = 1


class SubmissionUserError(ValueError):
    """The account cannot be added or removed as asked; the message says why."""


@dataclass(frozen=True)
class SubmissionUser:
    """An account as stored: its login, its domain and its password hash."""

    login: str
    domain: str
    password_hash: str
    created_at: float


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A new salted scrypt hash of ``password``, with its parameters."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=2**26)
    encode = base64.b64encode
    return f"scrypt${n}${r}${p}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time compare; False if malformed)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest, validate=True)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt, validate=True),
            n=int(n), r=int(r), p=int(p), maxmem=2**26, dklen=len(expected),
        )  # fmt: skip
    except (ValueError, UnicodeError):
        return False
    return scheme == "scrypt" and hmac.compare_digest(got, expected)


DUMMY_HASH = hash_password(secrets.token_hex(16))
"""Checked against when the login is unknown, so a reply's timing does not tell which exist."""


def add(conn: Connection, domain: str, login: str, password_hash: str, now: float) -> None:
    """Store a new account; raises SubmissionUserError when the login is taken."""
    taken = find(conn, login)
    if taken is not None:
        raise SubmissionUserError(f"login {login!r} already exists (for {taken.domain})")
    conn.execute(
        submission_users.insert().values(
            login=login, domain=domain, password_hash=password_hash, created_at=now
        )
    )


def remove(conn: Connection, domain: str, login: str) -> None:
    """Delete an account of ``domain``; raises SubmissionUserError when there is none."""
    done = conn.execute(
        delete(submission_users)
        .where(submission_users.c.login == login)
        .where(submission_users.c.domain == domain)
    )
    if done.rowcount != 1:
        raise SubmissionUserError(f"no submission user {login!r} for {domain}")


def find(conn: Connection, login: str) -> SubmissionUser | None:
    row = conn.execute(
        select(submission_users).where(submission_users.c.login == login)
    ).one_or_none()
    if row is None:
        return None
    return SubmissionUser(row.login, row.domain, row.password_hash, row.created_at)


def listing(conn: Connection, domain: str | None = None) -> list[SubmissionUser]:
    """Accounts, of one domain or all, by domain then login."""
    query = select(submission_users).order_by(submission_users.c.domain, submission_users.c.login)
    if domain is not None:
        query = query.where(submission_users.c.domain == domain)
    return [
        SubmissionUser(r.login, r.domain, r.password_hash, r.created_at)
        for r in conn.execute(query)
    ]
