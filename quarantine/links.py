"""Signed one-click digest links, so a recipient can act on held mail without logging in.

A token is ``v1.<payload>.<mac>``: ``payload`` is the unpadded base64url of a
compact JSON object ``{"a": action, "h": held_id, "r": recipient,
"e": expires_at, "n": nonce}`` and ``mac`` the unpadded base64url of
HMAC-SHA256(secret, ``b"v1." + payload``). Only ``[A-Za-z0-9_.-]`` appears,
so the token can sit in a URL path or query without escaping.

Verification is stateless: a valid token verifies every time until it
expires. Single use is the caller's job: after acting on a ``LinkClaim``,
record ``claim.nonce`` in a table of used nonces (kept at least until
``claim.expires_at``) and refuse any claim whose nonce is already there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
from dataclasses import dataclass
from typing import Final

ACTIONS: Final = frozenset({"release", "delete", "allow_sender", "request_release"})
MIN_SECRET_BYTES: Final = 32
MAX_TOKEN_CHARS: Final = 4096
_VERSION: Final = "v1"


class LinkError(Exception):
    """A digest link that must not be acted on."""


class TamperedLink(LinkError):
    """The token is malformed or its signature does not match (forged, altered, other key)."""


class ExpiredLink(LinkError):
    """The token is authentic but past its expiry; ``claim`` says what it was for."""

    def __init__(self, claim: LinkClaim) -> None:
        super().__init__(f"link expired at {claim.expires_at}")
        self.claim = claim


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What an authentic, unexpired link asks for; ``nonce`` is what the caller marks used."""

    action: str
    held_id: str
    recipient: str
    expires_at: float
    nonce: str


def new_nonce() -> str:
    """A fresh unguessable nonce (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def sign(
    secret: bytes, *, action: str, held_id: str, recipient: str, expires_at: float, nonce: str
) -> str:
    """A URL-safe token binding the action on one held message for one recipient until expiry."""
    _check_secret(secret)
    if action not in ACTIONS:
        raise ValueError(f"unknown link action {action!r}; expected one of {sorted(ACTIONS)}")
    for name, value in (("held_id", held_id), ("recipient", recipient), ("nonce", nonce)):
        if not value:
            raise ValueError(f"{name} must not be empty")
    if not math.isfinite(expires_at):
        raise ValueError(f"expires_at must be finite, got {expires_at!r}")
    fields = {"a": action, "h": held_id, "r": recipient, "e": expires_at, "n": nonce}
    body = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    signed = f"{_VERSION}.{_b64encode(body)}"
    return f"{signed}.{_mac(secret, signed)}"


def verify(secret: bytes, token: str, *, now: float) -> LinkClaim:
    """The claim a token carries; raises ``TamperedLink`` or ``ExpiredLink`` instead."""
    _check_secret(secret)
    # Non-ASCII is refused up front: compare_digest rejects non-ASCII str with TypeError.
    if len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise TamperedLink("malformed link token")
    version, _, rest = token.partition(".")
    payload, _, mac = rest.partition(".")
    if version != _VERSION or not payload or not mac:
        raise TamperedLink("malformed link token")
    # The encoded MAC is compared, not its decoded bytes: base64 has spare bits in
    # its last character, and two spellings of one MAC would both verify.
    if not hmac.compare_digest(mac, _mac(secret, f"{version}.{payload}")):
        raise TamperedLink("link signature does not match")
    claim = _parse_claim(payload)
    if now >= claim.expires_at:
        raise ExpiredLink(claim)
    return claim


def _parse_claim(payload: str) -> LinkClaim:
    """The claim inside an authentic payload; shape errors still mean we did not sign it."""
    try:
        fields = json.loads(_b64decode(payload))
    except ValueError as exc:  # binascii.Error and JSONDecodeError are ValueErrors
        raise TamperedLink("link payload is not valid") from exc
    if not isinstance(fields, dict) or set(fields) != {"a", "h", "r", "e", "n"}:
        raise TamperedLink("link payload has the wrong fields")
    action, held_id, recipient, nonce = fields["a"], fields["h"], fields["r"], fields["n"]
    expires_at = fields["e"]
    texts = (action, held_id, recipient, nonce)
    if not all(isinstance(text, str) and text for text in texts) or action not in ACTIONS:
        raise TamperedLink("link payload has invalid values")
    if isinstance(expires_at, bool) or not isinstance(expires_at, int | float):
        raise TamperedLink("link payload has an invalid expiry")
    return LinkClaim(action, held_id, recipient, float(expires_at), nonce)


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"link secret must be at least {MIN_SECRET_BYTES} bytes")


def _mac(secret: bytes, signed: str) -> str:
    return _b64encode(hmac.new(secret, signed.encode("ascii"), hashlib.sha256).digest())


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
