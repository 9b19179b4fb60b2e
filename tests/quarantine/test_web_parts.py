"""The pages' parts on their own: sealed values, the rate limit, session cookies."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Request, Response

from quarantine.web.ratelimit import RateLimit
from quarantine.web.render import preview
from quarantine.web.seal import BadSeal, seal, unseal
from quarantine.web.session import COOKIE, Kind, Sessions

SECRET = b"k" * 32
OTHER = b"o" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_sealed_value_opens_only_with_its_key_purpose_and_time() -> None:
    token = seal(SECRET, "signin", {"a": "bob@example.test"}, expires_at=2_000.0)
    assert unseal(SECRET, "signin", token, now=1_999.0)["a"] == "bob@example.test"
    mac = token.split(".")[1]
    forged = seal(OTHER, "signin", {"a": "eve@example.test"}, expires_at=9e9).split(".")[0]
    for bad, purpose, now in [
        (token, "session", 1_000.0),  # a sign-in link is not a session cookie
        (token, "signin", 2_000.0),  # expired
        (f"{forged}.{mac}", "signin", 1_000.0),  # someone else's payload under our MAC
        (token + "A", "signin", 1_000.0),
        ("", "signin", 1_000.0),
        ("é." + mac, "signin", 1_000.0),
        ("x" * 5000, "signin", 1_000.0),
    ]:
        with pytest.raises(BadSeal):
            unseal(SECRET, purpose, bad, now=now)
    with pytest.raises(BadSeal):
        unseal(OTHER, "signin", token, now=1_000.0)


def test_rate_limit_slides_per_key() -> None:
    clock = Clock()
    limit = RateLimit(2, 60, clock, keys=2)
    assert [limit.allow("a") for _ in range(3)] == [True, True, False]
    assert limit.allow("b")
    clock.now += 60
    assert limit.allow("a")  # the window moved on
    limit.allow("c")  # a third key: the least recently used one ("b") is forgotten
    assert set(limit._seen) == {"a", "c"}


def _request(scheme: str) -> Request:
    scope: dict[str, Any] = {"type": "http", "scheme": scheme, "method": "GET", "path": "/my/"}
    scope.update(headers=[], query_string=b"", server=("q.test", 443))
    return Request(scope)


@pytest.mark.parametrize(
    ("scheme", "public_url", "secure"),
    [("http", "", False), ("https", "", True), ("http", "https://q.example.test", True)],
)
def test_session_cookie_flags(scheme: str, public_url: str, secure: bool) -> None:
    sessions = Sessions(None, SECRET, Clock(), lambda: public_url)  # type: ignore[arg-type]
    response = Response()
    session = sessions.new(Kind.USER, "bob@example.test")
    sessions.keep(_request(scheme), response, session)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/my" in cookie
    assert ("Secure" in cookie) is secure
    assert sessions.csrf_ok(session, sessions.csrf(session))
    assert not sessions.csrf_ok(sessions.new(Kind.USER, "bob@example.test"), sessions.csrf(session))


def test_preview_keeps_text_and_drops_everything_active() -> None:
    page = preview(
        '<p onclick="x()">hi <b>there</b></p><script>alert(1)</script><img src="http://x/y">'
        '<a href="javascript:alert(2)">a</a><a href="https://x.test/">b</a><style>p{}</style>'
    )
    body = page.body.decode()
    assert "<p>hi <b>there</b></p>" in body
    for gone in ("script", "onclick", "img", "javascript", "https://x.test", "<style"):
        assert gone not in body
    assert "sandbox" in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
