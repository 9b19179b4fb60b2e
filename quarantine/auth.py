"""Bearer-token authentication for the REST API: the token names a Principal, or 401."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from quarantine import tokens
from quarantine.service import Quarantine
from store.principal import Principal

_scheme = HTTPBearer(auto_error=False, description="API token from `mailmoat token create`")
CHALLENGE = 'Bearer realm="mailmoat"'


def bearer_principal(quarantine: Quarantine) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency resolving ``Authorization: Bearer <token>`` to its Principal."""

    async def principal(
        credentials: HTTPAuthorizationCredentials | None = Depends(_scheme),
    ) -> Principal:
        if credentials is None:
            raise HTTPException(401, "an API token is required", {"WWW-Authenticate": CHALLENGE})
        found = await quarantine.read(tokens.authenticate, credentials.credentials)
        if found is None:
            raise HTTPException(
                401, "unknown or revoked API token",
                {"WWW-Authenticate": CHALLENGE + ', error="invalid_token"'},
            )  # fmt: skip
        return found

    return principal
