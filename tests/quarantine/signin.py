"""Helpers for the page tests: the sign-in link the gateway mailed, and form CSRF tokens."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

from tests.quarantine.conftest import Env
from tests.service.gatewayfixtures import eventually

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LINK = re.compile(r"(http://\S+/my/signin/[A-Za-z0-9_.-]+)")


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found is not None, page
    return found.group(1)


def signin_mails(env: Env, address: str) -> list[str]:
    """The sign-in links mailed to ``address`` so far, oldest first."""
    links = []
    for received in env.sink.received:
        if address not in received.rcpt_tos or b"Sign in to your mail" not in received.data:
            continue
        parsed = email.message_from_bytes(received.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        body = parsed.get_body(("plain",))
        assert isinstance(body, EmailMessage)
        links += LINK.findall(body.get_content())
    return links


async def mailed_link(env: Env, address: str, before: int = 0) -> str:
    """Wait for a sign-in link beyond the first ``before`` and return it."""
    await eventually(lambda: len(signin_mails(env, address)) > before)
    return signin_mails(env, address)[-1]
