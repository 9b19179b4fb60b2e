"""Digest links: valid, expired, tampered in every part, wrong key, reuse, bad input."""

from __future__ import annotations

import base64
import json

import pytest

from quarantine.links import (
    ACTIONS,
    ExpiredLink,
    LinkClaim,
    LinkError,
    TamperedLink,
    new_nonce,
    sign,
    verify,
)

SECRET = b"s" * 32
OTHER = b"o" * 32
NOW = 1_700_000_000.0
EXPIRES = NOW + 7 * 86400
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def token(**overrides: object) -> str:
    fields: dict[str, object] = {
        "action": "release",
        "held_id": "h-0001",
        "recipient": "bob@example.test",
        "expires_at": EXPIRES,
        "nonce": "n-abc",
    }
    fields.update(overrides)
    return sign(SECRET, **fields)  # type: ignore[arg-type]


def flip(text: str, index: int) -> str:
    """The text with one character changed to another base64url character."""
    char = text[index]
    return text[:index] + ("A" if char != "A" else "B") + text[index + 1 :]


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_valid_token_round_trips_every_field(action: str) -> None:
    claim = verify(SECRET, token(action=action), now=NOW)
    assert claim == LinkClaim(action, "h-0001", "bob@example.test", EXPIRES, "n-abc")


@pytest.mark.parametrize(
    "recipient", ["Bob.O'Neil+tag@Example.TEST", "josé@exämple.test", 'a"b\\c@x.test']
)
def test_awkward_fields_round_trip_and_token_stays_url_safe(recipient: str) -> None:
    tok = token(recipient=recipient, held_id="id/with?odd&chars=", nonce=new_nonce())
    assert set(tok) <= set(B64URL + ".")
    claim = verify(SECRET, tok, now=NOW)
    assert (claim.recipient, claim.held_id) == (recipient, "id/with?odd&chars=")


def test_token_is_compact_and_has_three_dotted_parts() -> None:
    tok = token(held_id="0123456789abcdef0123456789abcdef", nonce=new_nonce())
    version, payload, mac = tok.split(".")
    assert version == "v1"
    assert len(mac) == 43  # 32-byte HMAC-SHA256, unpadded base64url
    assert len(tok) < 256  # fits comfortably in one URL line of a plain-text digest
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert set(decoded) == {"a", "h", "r", "e", "n"}


def test_integer_expiry_round_trips_as_float() -> None:
    claim = verify(SECRET, token(expires_at=int(EXPIRES)), now=NOW)
    assert claim.expires_at == EXPIRES
    assert isinstance(claim.expires_at, float)


@pytest.mark.parametrize(
    ("now", "expired"),
    [(NOW, False), (EXPIRES - 0.001, False), (EXPIRES, True), (EXPIRES + 1, True)],
)
def test_expiry_boundary(now: float, expired: bool) -> None:
    tok = token()
    if not expired:
        assert verify(SECRET, tok, now=now).held_id == "h-0001"
        return
    with pytest.raises(ExpiredLink) as caught:
        verify(SECRET, tok, now=now)
    assert caught.value.claim.nonce == "n-abc"  # authentic: the caller may say which message


@pytest.mark.parametrize("part", [0, 1, 2])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_flipping_any_character_in_any_part_is_tampering(part: int, where: str) -> None:
    parts = token().split(".")
    index = {"first": 0, "middle": len(parts[part]) // 2, "last": len(parts[part]) - 1}[where]
    parts[part] = flip(parts[part], index)
    with pytest.raises(TamperedLink):
        verify(SECRET, ".".join(parts), now=NOW)


def test_every_single_character_flip_is_caught() -> None:
    tok = token()
    for index, char in enumerate(tok):
        if char == ".":
            continue
        with pytest.raises(TamperedLink):
            verify(SECRET, flip(tok, index), now=NOW)


def test_mac_spelled_with_other_spare_bits_is_refused() -> None:
    """43 base64 characters carry 258 bits for 256: the last one has spellings that decode alike."""
    version, payload, mac = token().split(".")
    twin = B64URL[B64URL.index(mac[-1]) ^ 1]
    forged = f"{version}.{payload}.{mac[:-1]}{twin}"
    assert base64.urlsafe_b64decode(forged.split(".")[2] + "=") == base64.urlsafe_b64decode(
        mac + "="
    )
    with pytest.raises(TamperedLink):
        verify(SECRET, forged, now=NOW)


def test_payload_rewritten_to_another_message_is_refused() -> None:
    version, _, mac = token().split(".")
    _, other_payload, _ = token(held_id="h-9999").split(".")
    with pytest.raises(TamperedLink):
        verify(SECRET, f"{version}.{other_payload}.{mac}", now=NOW)


def test_extended_expiry_is_refused() -> None:
    version, payload, mac = token().split(".")
    fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    fields["e"] = EXPIRES + 365 * 86400
    forged = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()
    with pytest.raises(TamperedLink):
        verify(SECRET, f"{version}.{forged}.{mac}", now=NOW)


def test_wrong_secret_is_tampering() -> None:
    with pytest.raises(TamperedLink):
        verify(OTHER, token(), now=NOW)


def test_signature_beats_expiry_so_forgeries_learn_nothing() -> None:
    with pytest.raises(TamperedLink):
        verify(OTHER, token(), now=EXPIRES + 1)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        ".",
        "..",
        "v1",
        "v1..",
        "v2.eyJ9.AAAA",
        "v1.eyJ9",
        "v1.eyJ9.AAAA.extra",
        "v1.é.AAAA",
        "v1." + "A" * 5000 + ".AAAA",
        "not a token at all",
    ],
)
def test_malformed_tokens_are_tampering(bad: str) -> None:
    with pytest.raises(TamperedLink):
        verify(SECRET, bad, now=NOW)


def test_errors_share_one_base() -> None:
    assert issubclass(TamperedLink, LinkError)
    assert issubclass(ExpiredLink, LinkError)
    for bad in ("junk", token(expires_at=NOW - 1)):
        with pytest.raises(LinkError):
            verify(SECRET, bad, now=NOW)


def test_reuse_is_refused_by_the_callers_nonce_table() -> None:
    """verify is stateless; the caller records claim.nonce after acting and refuses it next time."""
    tok = token(nonce=new_nonce())
    used: set[str] = set()
    outcomes = []
    for _ in range(2):
        claim = verify(SECRET, tok, now=NOW)  # still authentic the second time
        if claim.nonce in used:
            outcomes.append("already used")
            continue
        used.add(claim.nonce)
        outcomes.append(claim.action)
    assert outcomes == ["release", "already used"]


def test_nonces_are_fresh_and_url_safe() -> None:
    nonces = {new_nonce() for _ in range(200)}
    assert len(nonces) == 200
    assert all(len(n) >= 22 and set(n) <= set(B64URL) for n in nonces)


@pytest.mark.parametrize("secret", [b"", b"x" * 16, b"x" * 31])
def test_short_secret_is_refused_both_ways(secret: bytes) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        sign(secret, action="release", held_id="h", recipient="r", expires_at=EXPIRES, nonce="n")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        verify(secret, token(), now=NOW)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"action": "approve"}, "unknown link action"),
        ({"action": ""}, "unknown link action"),
        ({"held_id": ""}, "held_id"),
        ({"recipient": ""}, "recipient"),
        ({"nonce": ""}, "nonce"),
        ({"expires_at": float("inf")}, "finite"),
        ({"expires_at": float("nan")}, "finite"),
    ],
)
def test_sign_refuses_bad_fields(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        token(**overrides)
