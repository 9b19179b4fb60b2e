"""Signed, expiring values for URLs and cookies: magic sign-in links and session cookies.

A sealed value is ``<payload>.<mac>``: the unpadded base64url of compact JSON
and of HMAC-SHA256 over the purpose and the payload. The purpose is part of
the MAC, so a session cookie can never be replayed as a sign-in link or the
other way round. Nothing is encrypted: only what may be seen goes in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any, Final

MAX_CHARS: Final = 4096


class BadSeal(Exception):
    """Forged, altered, malformed, for another purpose, or expired: never act on it."""


def seal(secret: bytes, purpose: str, fields: dict[str, Any], *, expires_at: float) -> str:
    """``fields`` and their expiry, signed for ``purpose``; only ``[A-Za-z0-9_.-]`` appears."""
    body = json.dumps({**fields, "exp": expires_at}, separators=(",", ":"), sort_keys=True)
    payload = _b64(body.encode())
    return f"{payload}.{_mac(secret, purpose, payload)}"


def unseal(secret: bytes, purpose: str, token: str, *, now: float) -> dict[str, Any]:
    """The fields of an authentic, unexpired value sealed for ``purpose``; else ``BadSeal``."""
    if len(token) > MAX_CHARS or not token.isascii():
        raise BadSeal("malformed")
    payload, _, mac = token.partition(".")
    if not payload or not hmac.compare_digest(mac, _mac(secret, purpose, payload)):
        raise BadSeal("signature does not match")
    try:
        fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise BadSeal("payload is not valid") from exc
    expires = fields.get("exp") if isinstance(fields, dict) else None
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise BadSeal("no expiry")
    if now >= expires:
        raise BadSeal("expired")
    return dict(fields)


def _mac(secret: bytes, purpose: str, payload: str) -> str:
    digest = hmac.new(secret, f"{purpose}\n{payload}".encode("ascii"), hashlib.sha256).digest()
    return _b64(digest)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
