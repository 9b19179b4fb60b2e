"""Who is looking at the pages: a sealed session cookie, its CSRF token, and the viewer it names.

Every visitor carries a session (anonymous until sign-in) so every form,
the sign-in forms included, has a CSRF token bound to it. Signing in issues
a new session id, so a session planted before sign-in is worth nothing
after it. An administrator's session keeps only the hash of their API token
and looks it up on every request: revoking the token ends the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from fastapi import Request, Response

from quarantine import accounts, tokens
from quarantine.service import Quarantine
from quarantine.web.seal import BadSeal, seal, unseal
from store.principal import USER, Principal

COOKIE: Final = "mm_session"
PURPOSE: Final = "session"
TTL: Final = 8 * 3600.0


class Kind(StrEnum):
    """What a session stands for."""

    ANONYMOUS = "anon"
    USER = "user"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Session:
    kind: Kind
    subject: str  # the user's address, the admin token's hash, or "" when anonymous
    sid: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in person: what they may see (``principal``) and, for a user, whose mail."""

    principal: Principal
    address: str | None  # None: a domain administrator, who sees every user of its domains
    label: str

    @property
    def admin(self) -> bool:
        return self.address is None


class Sessions:
    """Reads and writes session cookies; resolves them to viewers against the store."""

    def __init__(
        self,
        quarantine: Quarantine,
        secret: bytes,
        clock: Callable[[], float],
        public_url: Callable[[], str] = lambda: "",
    ) -> None:
        self.quarantine = quarantine
        self.secret = secret
        self.clock = clock
        self.public_url = public_url

    def current(self, request: Request) -> Session:
        """The request's session, or a fresh anonymous one (not yet sent: see ``keep``)."""
        cookie = request.cookies.get(COOKIE, "")
        try:
            fields = unseal(self.secret, PURPOSE, cookie, now=self.clock())
            return Session(Kind(fields["k"]), str(fields["s"]), str(fields["i"]), fields["exp"])
        except (BadSeal, KeyError, ValueError):
            return self.new(Kind.ANONYMOUS, "")

    def new(self, kind: Kind, subject: str) -> Session:
        return Session(kind, subject, secrets.token_urlsafe(16), self.clock() + TTL)

    def keep(self, request: Request, response: Response, session: Session) -> None:
        """Send the session cookie: HttpOnly, SameSite=Lax, Secure whenever TLS is in the way.

        TLS is in the way when the request came by it or when the public URL
        (a TLS proxy in front of the gateway) is https.
        """
        secure = request.url.scheme == "https" or self.public_url().startswith("https://")
        value = seal(
            self.secret,
            PURPOSE,
            {"k": session.kind.value, "s": session.subject, "i": session.sid},
            expires_at=session.expires_at,
        )
        response.set_cookie(
            COOKIE,
            value,
            max_age=int(TTL),
            path="/my",
            httponly=True,
            samesite="lax",
            secure=secure,
        )

    def csrf(self, session: Session) -> str:
        """The token every form of this session carries; derived, so nothing is stored."""
        mac = hmac.new(self.secret, f"csrf\n{session.sid}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def csrf_ok(self, session: Session, token: str) -> bool:
        return hmac.compare_digest(self.csrf(session).encode(), token.encode())

    async def viewer(self, session: Session) -> Viewer | None:
        """Who the session signs in, if it still may: the account or the token still exists."""
        if session.kind is Kind.USER:
            account = await self.quarantine.read(accounts.get, session.subject)
            if account is None:
                return None
            who = Principal(f"{USER}{account.address}", False, frozenset({account.domain}))
            return Viewer(who, account.address, account.address)
        if session.kind is Kind.ADMIN:
            found = await self.quarantine.read(tokens.authenticate_hash, session.subject)
            if found is None:
                return None
            scope = "all domains" if found.operator else ", ".join(sorted(found.domains))
            return Viewer(found, None, f"{found.name} ({scope})")
        return None
