"""Retention on virtual time, digests, and their one-click links."""

from __future__ import annotations

import email
import email.message
import email.policy
import re
from collections.abc import Callable
from typing import Any

from quarantine import accounts
from quarantine.links import verify
from tests.quarantine.conftest import Env
from tests.service.gatewayfixtures import eventually, message, rows, send

DAY = 86400.0
LINK = re.compile(rb"http://[^\s\"<>]+/q/([A-Za-z0-9_.=-]+)")


async def test_retention_spam_14_days_virus_30_days(env: Env) -> None:
    spam = await env.hold_spam()
    virus = await env.hold_virus()
    await env.delivered_to("bob@example.test")  # the account notices are out: nothing pending
    await env.delivered_to("carol@other.test")
    upkeep = env.gateway.upkeep
    env.clock.advance(13 * DAY)
    assert (await upkeep.purge())[0] == 0
    env.clock.advance(2 * DAY)  # day 15
    assert (await upkeep.purge())[0] == 1
    assert [r[0] for r in rows(env.db, "SELECT id FROM quarantine")] == [virus]
    env.clock.advance(16 * DAY)  # day 31
    assert (await upkeep.purge())[0] == 1
    assert rows(env.db, "SELECT count(*) FROM quarantine") == [(0,)]
    # The bodies go too; the events that say what happened stay for the SLA monitor.
    assert rows(env.db, "SELECT count(*) FROM messages WHERE raw != x''") == [(0,)]
    assert rows(env.db, "SELECT count(*) FROM events") == [(2,)]
    assert spam != virus


async def eventually_rows(env: Env, query: str, check: Callable[[list[Any]], bool]) -> None:
    await eventually(lambda: bool(check(rows(env.db, query))))


async def _digest_links(env: Env) -> dict[str, bytes]:
    """Hold spam for bob, send his digest, and return its links by action."""
    await env.hold_spam(subject="held one")
    await env.delivered_to("bob@example.test")  # account notice
    env.clock.advance(DAY)  # the daily digest is due
    assert await env.gateway.upkeep.send_digests() == 1
    assert await env.gateway.upkeep.send_digests() == 0  # nothing new: no second digest
    received = await env.delivered_to("bob@example.test", 2)
    (digest,) = [r for r in received if b"Subject: Quarantine digest" in r.data]
    parsed = email.message_from_bytes(digest.data, policy=email.policy.default)
    body = parsed.get_body(("plain",))
    assert isinstance(body, email.message.EmailMessage)
    text = body.get_content().encode()
    secret = env.gateway.upkeep.secret
    return {verify(secret, t.decode(), now=env.clock()).action: t for t in LINK.findall(text)}


async def test_digest_link_releases_once(env: Env) -> None:
    links = await _digest_links(env)
    assert set(links) == {"release", "delete", "allow_sender"}
    url = f"/q/{links['release'].decode()}"
    page = await env.http.get(url)  # a link scanner fetching it changes nothing
    assert page.status_code == 200 and "<form method='post'" in page.text
    assert rows(env.db, "SELECT state FROM quarantine") == [("held",)]
    done = await env.http.post(url)
    assert done.status_code == 200 and "released" in done.text
    await env.released_to("bob@example.test")
    reused = await env.http.post(url)
    assert reused.status_code == 410 and "already used" in reused.text


async def test_digest_link_expires(env: Env) -> None:
    links = await _digest_links(env)
    assert (await env.http.post(f"/q/{links['allow_sender'].decode()}")).status_code == 200
    env.clock.advance(8 * DAY)  # links live 7 days
    answer = await env.http.post(f"/q/{links['delete'].decode()}")
    assert answer.status_code == 410 and "expired" in answer.text
    assert rows(env.db, "SELECT state FROM quarantine") == [("held",)]
    assert rows(env.db, "SELECT count(*) FROM link_uses") == [(1,)]
    await env.gateway.upkeep.purge()  # a spent nonce is kept only while its link could verify
    assert rows(env.db, "SELECT count(*) FROM link_uses") == [(0,)]


async def test_tampered_link_is_refused(env: Env) -> None:
    links = await _digest_links(env)
    token = links["release"].decode()
    version, payload, mac = token.split(".")
    forged = ".".join((version, payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1],
                       mac))  # fmt: skip
    for bad in (forged, token[:-1] + ("A" if token[-1] != "A" else "B"), "garbage"):
        answer = await env.http.post(f"/q/{bad}")
        assert answer.status_code == 400, bad
    assert rows(env.db, "SELECT state FROM quarantine") == [("held",)]


async def test_allow_sender_link(env: Env) -> None:
    links = await _digest_links(env)
    answer = await env.http.post(f"/q/{links['allow_sender'].decode()}")
    assert answer.status_code == 200
    query = "SELECT scope, owner, kind, value FROM list_entries"
    assert rows(env.db, query) == [("user", "bob@example.test", "whitelist", "x@spammer.example")]


async def test_digest_lists_each_message_once_per_recipient(env: Env) -> None:
    await env.hold_spam(to="bob@example.test")
    await env.gateway.quarantine.write(accounts.set_notify, "bob@example.test", "never", None)
    env.clock.advance(DAY)
    assert await env.gateway.upkeep.send_digests() == 0  # "never" means never


async def test_undeliverable_mail_expires_after_7_days_with_a_dsn(env: Env) -> None:
    env.sink.reply_at_rcpt("451 4.3.0 try later", ["bob@example.test"])
    await send(env.gateway.smtp_port, message(subject="stuck"))
    await eventually_rows(env, "SELECT attempts FROM deliveries WHERE kind = 'deliver'",
                          lambda found: found and found[0][0] >= 1)  # fmt: skip
    env.clock.advance(7 * DAY + 1)
    await eventually_rows(env, "SELECT state, last_error FROM deliveries WHERE kind = 'deliver'",
                          lambda found: found[0][0] == "expired")  # fmt: skip
    (state, error) = rows(env.db, "SELECT outcome, detail FROM events")[0]
    assert state == "expired" and "451" in error
    dsn = [r for r in await env.delivered_to("alice@sender.test") if r.mail_from == "<>"]
    assert dsn and b"Action: failed" in dsn[0].data


async def _digest_text(env: Env, address: str) -> str:
    env.clock.advance(DAY)
    assert await env.gateway.upkeep.send_digests() == 1
    received = await env.delivered_to(address, 2)  # the account notice, then the digest
    (digest,) = [r for r in received if b"Subject: Quarantine digest" in r.data]
    parsed = email.message_from_bytes(digest.data, policy=email.policy.default)
    body = parsed.get_body(("plain",))
    assert isinstance(body, email.message.EmailMessage)
    return str(body.get_content())


async def test_link_confirmation_names_the_message(env: Env) -> None:
    links = await _digest_links(env)
    page = await env.http.get(f"/q/{links['delete'].decode()}")
    assert page.status_code == 200
    for shown in ("held one", "x@spammer.example", "BLACKLIST_PRIVATE", "Delete this message"):
        assert shown in page.text


async def test_a_virus_digest_offers_a_release_request_that_reaches_the_operators(
    env: Env,
) -> None:
    virus = await env.hold_virus(to="carol@other.test")
    text = await _digest_text(env, "carol@other.test")
    assert "1 message addressed to carol@other.test was held" in text
    assert "Held as a virus (" in text and "score 0.0" not in text
    secret = env.gateway.upkeep.secret
    found = {verify(secret, t.decode(), now=env.clock()).action: t
             for t in LINK.findall(text.encode())}  # fmt: skip
    assert set(found) == {"request_release", "delete"}
    url = f"/q/{found['request_release'].decode()}"
    page = await env.http.get(url)
    assert "invoice" in page.text and 'name="reason"' in page.text
    empty = await env.http.post(url, data={"reason": " "})
    assert empty.status_code == 422  # an operator needs a reason; the link is not spent
    asked = await env.http.post(url, data={"reason": "my supplier's invoice"})
    assert asked.status_code == 200 and "release requested" in asked.text
    (request,) = (await env.http.get("/api/v1/release-requests", headers=env.auth("ops"))).json()[
        "items"
    ]
    assert (request["held_id"], request["reason"], request["to"]) == (
        virus, "my supplier's invoice", ["carol@other.test"],
    )  # fmt: skip


async def test_the_manage_link_lands_on_the_quarantine_pages(env: Env) -> None:
    await env.hold_spam()
    text = await _digest_text(env, "bob@example.test")
    (manage,) = re.findall(r"Manage your quarantine: (\S+)", text)
    assert manage.endswith("/my/")
    answer = await env.http.get(manage.split(str(env.gateway.http_port), 1)[1])
    assert answer.status_code == 303 and answer.headers["location"] == "/my/signin"
    assert "Sign in" in (await env.http.get("/my/signin")).text
