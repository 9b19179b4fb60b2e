"""The customer pages over real HTTP: sign-in, sessions, CSRF, escaping, tenant isolation."""

from __future__ import annotations

import httpx

from quarantine import tokens
from tests.quarantine.conftest import Env
from tests.quarantine.signin import csrf_of, mailed_link, signin_mails
from tests.service.gatewayfixtures import rows


def browser(env: Env) -> httpx.AsyncClient:
    """A separate visitor with its own cookie jar."""
    return httpx.AsyncClient(base_url=str(env.http.base_url), timeout=30)


async def ask_for_link(client: httpx.AsyncClient, address: str) -> httpx.Response:
    form = await client.get("/my/signin")
    return await client.post("/my/signin", data={"email": address, "csrf": csrf_of(form.text)})


async def sign_in(env: Env, client: httpx.AsyncClient, address: str) -> None:
    before = len(signin_mails(env, address))
    sent = await ask_for_link(client, address)
    assert sent.status_code == 200 and "Check your mail" in sent.text
    link = await mailed_link(env, address, before)
    path = httpx.URL(link).path
    confirm = await client.get(path)
    used = await client.post(path, data={"csrf": csrf_of(confirm.text)})
    assert used.status_code == 303 and used.headers["location"] == "/my/"


async def admin_sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    form = await client.get("/my/signin")
    return await client.post("/my/admin-signin", data={"token": token, "csrf": csrf_of(form.text)})


async def test_magic_link_signs_in_once(env: Env) -> None:
    await env.hold_spam(subject="cheap pills")
    async with browser(env) as client:
        assert (await client.get("/my/")).headers["location"] == "/my/signin"
        await ask_for_link(client, "Bob@Example.test")
        link = await mailed_link(env, "bob@example.test")
        path = httpx.URL(link).path
        confirm = await client.get(path)  # a link scanner's fetch spends nothing
        assert confirm.status_code == 200 and (await client.get(path)).status_code == 200
        used = await client.post(path, data={"csrf": csrf_of(confirm.text)})
        cookie = used.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/my" in cookie
        assert "secure" not in cookie  # plain HTTP here; Secure whenever the page came by TLS
        listing = await client.get("/my/")
        assert listing.status_code == 200 and "cheap pills" in listing.text
        assert "BLACKLIST_PRIVATE" in listing.text
        stale = await client.post(path, data={"csrf": csrf_of(confirm.text)})
        assert stale.status_code == 403  # signing in began a new session: old forms are void
        again = await client.post(path, data={"csrf": csrf_of((await client.get(path)).text)})
        assert again.status_code == 400 and "already used" in again.text
        assert again.headers["content-type"].startswith("text/html")


async def test_asking_never_tells_whether_an_address_has_an_account(env: Env) -> None:
    await env.hold_spam()
    async with browser(env) as client:
        stranger = await ask_for_link(client, "nobody@example.test")
        known = await ask_for_link(client, "bob@example.test")
        assert stranger.status_code == known.status_code == 200
        assert stranger.text.replace("nobody", "bob") == known.text
        await mailed_link(env, "bob@example.test")
    assert signin_mails(env, "nobody@example.test") == []


async def test_sign_in_links_expire_and_are_rate_limited(env: Env) -> None:
    await env.hold_spam()
    async with browser(env) as client:
        for _ in range(5):
            await ask_for_link(client, "bob@example.test")
        await mailed_link(env, "bob@example.test", 2)
        # Refused requests never start a mailing, so three mails are all there will be.
        assert len(signin_mails(env, "bob@example.test")) == 3
        for _ in range(5):  # ten requests per client in fifteen minutes, then a friendly 429
            await ask_for_link(client, "someone@example.test")
        limited = await ask_for_link(client, "someone@example.test")
        assert limited.status_code == 429 and "Too many" in limited.text
        link = httpx.URL(signin_mails(env, "bob@example.test")[0]).path
        env.clock.advance(16 * 60)  # links live 15 minutes
        confirm = await client.get(link)
        late = await client.post(link, data={"csrf": csrf_of(confirm.text)})
        assert late.status_code == 400
        assert (await ask_for_link(client, "someone@example.test")).status_code == 200


async def test_every_form_needs_its_sessions_csrf_token(env: Env) -> None:
    spam = await env.hold_spam()
    async with browser(env) as client, browser(env) as other:
        await sign_in(env, client, "bob@example.test")
        theirs = csrf_of((await other.get("/my/signin")).text)
        for data in ({}, {"csrf": "forged"}, {"csrf": theirs}):
            answer = await client.post(f"/my/messages/{spam}/release", data=data)
            assert answer.status_code == 403 and "expired" in answer.text
            bulk = await client.post("/my/bulk", data={**data, "action": "delete", "ids": spam})
            assert bulk.status_code == 403
        assert (
            await other.post("/my/signin", data={"email": "bob@example.test"})
        ).status_code == 403
    assert rows(env.db, "SELECT state FROM quarantine") == [("held",)]


async def test_hostile_content_is_escaped_and_the_preview_sandboxed(env: Env) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    spam = await env.hold_spam(subject=hostile)
    async with browser(env) as client:
        await sign_in(env, client, "bob@example.test")
        for path in ("/my/", f"/my/messages/{spam}"):
            page = await client.get(path)
            assert "<script>" not in page.text and "onerror=alert" not in page.text.replace(
                "onerror=alert(1)&gt;", ""
            )
            assert "&lt;script&gt;" in page.text
            policy = page.headers["content-security-policy"]
            assert "default-src 'none'" in policy and "script-src" not in policy
            assert "frame-ancestors 'none'" in policy
        preview = await client.get(f"/my/messages/{spam}/preview")
        assert "sandbox" in preview.headers["content-security-policy"]


async def test_users_and_domains_see_only_their_own_mail(env: Env) -> None:
    bobs = await env.hold_spam(to="bob@example.test", subject="for bob")
    await env.hold_spam(to="dave@example.test", subject="for dave")
    carols = await env.hold_virus(to="carol@other.test")
    async with browser(env) as dave, browser(env) as beta:
        await sign_in(env, dave, "dave@example.test")
        assert (await beta_sign_in(beta, env)).status_code == 303
        listing = (await dave.get("/my/")).text
        assert "for dave" in listing and "for bob" not in listing
        for client, foreign in ((dave, bobs), (beta, bobs), (dave, carols)):
            csrf = csrf_of((await client.get("/my/")).text)
            page = await client.get(f"/my/messages/{foreign}")
            assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
            assert (await client.get(f"/my/messages/{foreign}/preview")).status_code == 404
            for action in ("release", "delete", "allow", "block", "request"):
                answer = await client.post(
                    f"/my/messages/{foreign}/{action}", data={"csrf": csrf, "reason": "mine"}
                )
                assert answer.status_code == 404, action
            bulk = await client.post("/my/bulk", data={"csrf": csrf, "action": "delete",
                                                        "ids": foreign})  # fmt: skip
            assert bulk.status_code == 409
        beta_list = (await beta.get("/my/")).text
        assert "for bob" not in beta_list and "invoice" in beta_list
    assert rows(env.db, "SELECT DISTINCT state FROM quarantine") == [("held",)]
    assert rows(env.db, "SELECT count(*) FROM list_entries") == [(0,)]


async def beta_sign_in(client: httpx.AsyncClient, env: Env) -> httpx.Response:
    return await admin_sign_in(client, env.tokens["beta"])


async def test_admin_sees_every_user_of_the_domain_until_the_token_is_revoked(env: Env) -> None:
    await env.hold_spam(to="bob@example.test", subject="for bob")
    await env.hold_spam(to="dave@example.test", subject="for dave")
    async with browser(env) as client:
        bad = await admin_sign_in(client, "mm_nope_nope")
        assert bad.status_code == 401 and "unknown or revoked" in bad.text
        assert (await admin_sign_in(client, env.tokens["alpha"])).status_code == 303
        listing = (await client.get("/my/")).text
        assert "for bob" in listing and "for dave" in listing
        only_dave = (await client.get("/my/", params={"recipient": "dave@example.test"})).text
        assert "for dave" in only_dave and "for bob" not in only_dave
        overview = await client.get("/my/admin")
        assert "bob@example.test" in overview.text and "dave@example.test" in overview.text
        (token_id,) = [t.id for t in env.gateway.store.read(tokens.listing) if t.name == "alpha"]
        env.gateway.store.write(tokens.revoke, token_id, env.clock())
        assert (await client.get("/my/")).headers["location"] == "/my/signin"


async def test_actions_from_the_pages(env: Env) -> None:
    spam = await env.hold_spam(subject="wanted")
    async with browser(env) as client:
        await sign_in(env, client, "bob@example.test")
        csrf = csrf_of((await client.get("/my/")).text)
        allowed = await client.post(f"/my/messages/{spam}/allow", data={"csrf": csrf})
        assert allowed.status_code == 303
        query = "SELECT scope, owner, kind, value FROM list_entries"
        assert rows(env.db, query) == [
            ("user", "bob@example.test", "whitelist", "x@spammer.example")
        ]
        released = await client.post(f"/my/messages/{spam}/release", data={"csrf": csrf})
        assert released.headers["location"] == "/my/?done=released"
        assert "Released" in (await client.get(released.headers["location"])).text
        await env.released_to("bob@example.test")
        saved = await client.post("/my/settings", data={"csrf": csrf, "notify": "hours",
                                                         "every_hours": "6"})  # fmt: skip
        assert saved.status_code == 303
        assert rows(env.db, "SELECT notify, every_hours FROM accounts") == [("hours", 6)]
        wrong = await client.post("/my/settings", data={"csrf": csrf, "notify": "weekly"})
        assert wrong.status_code == 422 and "Choose daily" in wrong.text


async def test_people_get_pages_and_programs_get_problems(env: Env) -> None:
    page = await env.http.get("/my/no/such/page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    api = await env.http.get("/api/v1/quarantine/nope", headers=env.auth("alpha"))
    assert api.headers["content-type"] == "application/problem+json"
    assert (await env.http.get("/")).headers["location"] == "/my/"
    assert (await env.http.get("/my/static/style.css")).status_code == 200


async def test_only_an_operator_decides_a_virus_release_from_the_pages(env: Env) -> None:
    virus = await env.hold_virus(to="carol@other.test")
    made = await env.http.post(f"/api/v1/quarantine/{virus}/release-requests",
                               headers=env.auth("beta"), json={"reason": "my invoice"})  # fmt: skip
    request_id = made.json()["id"]
    async with browser(env) as customer, browser(env) as operator:
        assert (await admin_sign_in(customer, env.tokens["beta"])).status_code == 303
        page = await customer.get("/my/admin")
        assert "my invoice" in page.text and "Approve" not in page.text
        answer = await customer.post(
            f"/my/requests/{request_id}/decision",
            data={"csrf": csrf_of(page.text), "decision": "approve", "reason": "mine"},
        )
        assert answer.status_code == 403 and "only an operator" in answer.text
        assert (await admin_sign_in(operator, env.tokens["ops"])).status_code == 303
        csrf = csrf_of((await operator.get("/my/admin")).text)
        url = f"/my/requests/{request_id}/decision"
        no_reason = await operator.post(url, data={"csrf": csrf, "decision": "approve"})
        assert no_reason.status_code == 422
        refused = await operator.post(url, data={"csrf": csrf, "decision": "refuse",
                                                 "reason": "not convinced"})  # fmt: skip
        assert refused.headers["location"] == "/my/admin?done=refused"
        again = await operator.post(url, data={"csrf": csrf, "decision": "approve",
                                               "reason": "changed my mind"})  # fmt: skip
        assert again.status_code == 409
    assert rows(env.db, "SELECT status, decision FROM release_requests") == [
        ("refused", "not convinced")
    ]


async def test_bulk_actions_and_bad_search_input(env: Env) -> None:
    first, second = await env.hold_spam(subject="a one"), await env.hold_spam(subject="a two")
    third = await env.hold_spam(subject="a three")
    async with browser(env) as client:
        await sign_in(env, client, "bob@example.test")
        csrf = csrf_of((await client.get("/my/")).text)
        done = await client.post("/my/bulk", data={"csrf": csrf, "action": "delete",
                                                    "ids": [first, second]})  # fmt: skip
        assert done.headers["location"] == "/my/?done=bulk"
        assert rows(env.db, "SELECT id FROM quarantine WHERE state = 'held'") == [(third,)]
        partly = await client.post("/my/bulk", data={"csrf": csrf, "action": "release",
                                                      "ids": [third, "nosuchid"]})  # fmt: skip
        assert partly.status_code == 207 and "nosuchid" in partly.text
        await env.released_to("bob@example.test")
        nothing = await client.post("/my/bulk", data={"csrf": csrf, "action": "release"})
        assert nothing.status_code == 422 and "Tick at least one" in nothing.text
        deleted = await client.get("/my/", params={"state": "deleted"})
        assert "a one" in deleted.text and "a two" in deleted.text
        for params, said in (
            ({"since": "yesterday"}, "use a date like"),
            ({"reason": "boring"}, "choose spam, virus or content"),
            ({"cursor": "!!"}, "not valid; showing the first page"),
        ):
            page = await client.get("/my/", params=params)
            assert page.status_code == 422 and said in page.text, params
        dated = await client.get("/my/", params={"since": "2026-11-18", "until": "2026-11-18",
                                                 "state": "released"})  # fmt: skip
        assert dated.status_code == 200 and "a three" in dated.text
        later = await client.get("/my/", params={"since": "2026-11-19", "state": "released"})
        assert "a three" not in later.text
