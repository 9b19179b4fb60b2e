"""The quarantine REST API over real HTTP against a running gateway."""

from __future__ import annotations

import email
from pathlib import Path

import pytest

from quarantine import tokens
from tests.quarantine.conftest import Env, start_env, stop_env
from tests.service.gatewayfixtures import POLICY, message, rows, send


async def test_every_endpoint_hides_other_customers_mail(env: Env) -> None:
    spam = await env.hold_spam()  # alpha's (example.test)
    virus = await env.hold_virus()  # beta's (other.test)
    entry = await env.http.post(
        "/api/v1/lists",
        headers=env.auth("alpha"),
        json={
            "domain": "example.test",
            "scope": "domain",
            "list": "blacklist",
            "value": "bad.example",
        },
    )
    assert entry.status_code == 201
    beta = env.auth("beta")
    foreign = [
        ("GET", f"/api/v1/quarantine/{spam}", None),
        ("POST", f"/api/v1/quarantine/{spam}/release", {}),
        ("DELETE", f"/api/v1/quarantine/{spam}", None),
        ("POST", f"/api/v1/quarantine/{spam}/sender", {"list": "whitelist"}),
        ("POST", f"/api/v1/quarantine/{spam}/release-requests", {"reason": "mine"}),
        ("DELETE", f"/api/v1/lists/{entry.json()['id']}", None),
        (
            "POST",
            "/api/v1/lists",
            {
                "domain": "example.test",
                "scope": "domain",
                "list": "whitelist",
                "value": "x.example",
            },
        ),
        (
            "GET",
            "/api/v1/reports?domain=example.test&since=2026-01-01T00:00:00Z"
            "&until=2027-01-01T00:00:00Z",
            None,
        ),
    ]
    for method, url, body in foreign:
        answer = await env.http.request(method, url, headers=beta, json=body)
        assert answer.status_code == 404, (method, url, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    missing = await env.http.get("/api/v1/quarantine/doesnotexist", headers=beta)
    assert missing.status_code == 404 and missing.json()["detail"] == "no such message"
    listed = (await env.http.get("/api/v1/quarantine", headers=beta)).json()["items"]
    assert [i["id"] for i in listed] == [virus]
    assert (await env.http.get("/api/v1/lists", headers=beta)).json() == []
    everything = (await env.http.get("/api/v1/quarantine", headers=env.auth("ops"))).json()
    assert {i["id"] for i in everything["items"]} == {spam, virus}
    # and the other way round
    answer = await env.http.get(f"/api/v1/quarantine/{virus}", headers=env.auth("alpha"))
    assert answer.status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic YTpi", "Bearer mm_x_y"])
async def test_a_valid_token_is_required(env: Env, header: str | None) -> None:
    answer = await env.http.get(
        "/api/v1/quarantine", headers={"Authorization": header} if header else {}
    )
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["status"] == 401


async def test_revoked_token_stops_working(env: Env) -> None:
    token_id, token = env.gateway.store.write(
        tokens.create, name="temp", operator=False, domains=["example.test"], now=env.clock()
    )
    ok = await env.http.get("/api/v1/quarantine", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert env.gateway.store.write(tokens.revoke, token_id, env.clock())
    gone = await env.http.get("/api/v1/quarantine", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401


async def test_read_shows_headers_text_and_why(env: Env) -> None:
    spam = await env.hold_spam(subject="cheap pills")
    got = (await env.http.get(f"/api/v1/quarantine/{spam}", headers=env.auth("alpha"))).json()
    assert got["subject"] == "cheap pills" and got["kind"] == "spam"
    assert {"name": "Subject", "value": "cheap pills"} in got["headers"]
    assert "planning meeting" in got["text_parts"][0]["text"]
    assert "BLACKLIST_PRIVATE" in got["why"]


@pytest.mark.parametrize(
    ("to", "status", "delivered_to"),
    [
        (None, 200, "bob@example.test"),
        (["bob@example.test"], 200, "bob@example.test"),
        (["admin@example.test"], 200, "admin@example.test"),  # another address of the customer
        (["friend@elsewhere.example"], 422, None),  # third party
        (["x@spammer.example"], 422, None),  # back to the sender
        (["not an address"], 422, None),
    ],
)
async def test_release_targets(
    env: Env, to: list[str] | None, status: int, delivered_to: str | None
) -> None:
    spam = await env.hold_spam()
    answer = await env.http.post(
        f"/api/v1/quarantine/{spam}/release", headers=env.auth("alpha"), json={"to": to}
    )
    assert answer.status_code == status, answer.text
    if delivered_to is None:
        assert rows(env.db, f"SELECT state FROM quarantine WHERE id = '{spam}'") == [("held",)]
        return
    assert answer.json()["released"] is True
    (got,) = await env.released_to(delivered_to)
    assert email.message_from_bytes(got.data)["X-Mailmoat-Released"].startswith("by alpha")
    assert rows(env.db, "SELECT label, source FROM training_labels") == [("ham", "release")]
    again = await env.http.post(
        f"/api/v1/quarantine/{spam}/release", headers=env.auth("alpha"), json={}
    )
    assert again.json()["released"] is False and "nothing done" in again.json()["detail"]


async def test_virus_release_needs_an_operators_authorisation(env: Env) -> None:
    virus = await env.hold_virus()
    beta, ops = env.auth("beta"), env.auth("ops")
    direct = await env.http.post(f"/api/v1/quarantine/{virus}/release", headers=beta, json={})
    assert direct.status_code == 403
    request = await env.http.post(
        f"/api/v1/quarantine/{virus}/release-requests",
        headers=beta,
        json={"reason": "the invoice is genuine"},
    )
    assert request.status_code == 201 and request.json()["status"] == "pending"
    rid = request.json()["id"]
    self_approve = await env.http.post(
        f"/api/v1/release-requests/{rid}/decision",
        headers=beta,
        json={"approve": True, "reason": "trust me"},
    )
    assert self_approve.status_code == 403
    approved = await env.http.post(
        f"/api/v1/release-requests/{rid}/decision",
        headers=ops,
        json={"approve": True, "reason": "checked with sender"},
    )
    assert approved.status_code == 200
    record = approved.json()
    assert (record["status"], record["decided_by"]) == ("released", "ops")
    assert record["requested_at"] <= record["decided_at"]
    await env.released_to("carol@other.test")


async def test_never_release_viruses_stay(tmp_path: Path) -> None:
    env = await start_env(tmp_path, POLICY + '\n[antivirus]\nnever_release = ["Eicar*"]\n')
    try:
        virus = await env.hold_virus()
        request = await env.http.post(
            f"/api/v1/quarantine/{virus}/release-requests",
            headers=env.auth("beta"),
            json={"reason": "please"},
        )
        assert request.status_code == 403
        forced = await env.http.post(
            f"/api/v1/quarantine/{virus}/release",
            headers=env.auth("ops"),
            json={"reason": "operator insists"},
        )
        assert forced.status_code == 403 and "never-release" in forced.json()["detail"]
    finally:
        await stop_env(env)


async def test_quarantine_full_falls_back_to_tag_and_deliver(tmp_path: Path) -> None:
    env = await start_env(tmp_path, quarantine={"quota_per_domain": 1})
    try:
        await env.hold_spam(subject="first")
        await send(
            env.gateway.smtp_port,
            message(subject="second", sender="x@spammer.example"),
            sender="x@spammer.example",
        )
        (got,) = [
            r
            for r in await env.delivered_to("bob@example.test", 2)
            if b"X-Mailmoat-Quarantine" in r.data
        ]
        tagged = email.message_from_bytes(got.data)
        assert tagged["Subject"] == "[SPAM] second" and tagged["X-Mailmoat-Spam"] == "yes"
        query = "SELECT outcome, detail FROM events WHERE detail IS NOT NULL"
        assert rows(env.db, query) == [
            ("delivered", "quarantine unavailable: tagged and delivered")
        ]
    finally:
        await stop_env(env)


async def test_list_changes_apply_to_the_next_message(env: Env) -> None:
    await env.hold_spam()
    added = await env.http.post(
        "/api/v1/lists",
        headers=env.auth("alpha"),
        json={
            "domain": "example.test",
            "scope": "user",
            "owner": "bob@example.test",
            "list": "whitelist",
            "value": "spammer.example",
        },
    )
    assert added.status_code == 201
    await send(
        env.gateway.smtp_port,
        message(subject="now allowed", sender="x@spammer.example"),
        sender="x@spammer.example",
    )
    delivered = await env.delivered_to("bob@example.test", 2)  # the account notice, then this
    assert any(b"now allowed" in r.data for r in delivered)
    removed = await env.http.delete(
        f"/api/v1/lists/{added.json()['id']}", headers=env.auth("alpha")
    )
    assert removed.status_code == 204


async def test_allow_sender_from_a_held_message(env: Env) -> None:
    spam = await env.hold_spam()
    made = await env.http.post(
        f"/api/v1/quarantine/{spam}/sender",
        headers=env.auth("alpha"),
        json={"list": "whitelist", "scope": "domain"},
    )
    assert made.status_code == 201
    assert [(e["scope"], e["owner"], e["value"]) for e in made.json()] == [
        ("domain", "example.test", "x@spammer.example")
    ]


async def test_bulk_release_and_delete(env: Env) -> None:
    first, second = await env.hold_spam(subject="a"), await env.hold_spam(subject="b")
    virus = await env.hold_virus()
    answer = await env.http.post(
        "/api/v1/quarantine/bulk",
        headers=env.auth("alpha"),
        json={"action": "delete", "ids": [first, second, virus, first]},
    )
    results = answer.json()["results"]
    assert results[first]["done"] and results[second]["done"]
    assert results[virus]["status"] == 404  # beta's, invisible to alpha
    assert rows(env.db, "SELECT count(*) FROM quarantine WHERE state = 'deleted'") == [(2,)]


async def test_report_counts_by_action_and_stage(env: Env) -> None:
    await env.hold_spam()
    await send(env.gateway.smtp_port, message())
    await env.delivered_to("bob@example.test", 2)
    answer = await env.http.get(
        "/api/v1/reports",
        headers=env.auth("alpha"),
        params={
            "domain": "example.test",
            "since": "2026-01-01T00:00:00Z",
            "until": "2027-01-01T00:00:00Z",
        },
    )
    report = answer.json()
    assert report["messages"] == 2
    assert report["by_action"] == {"quarantine": 1, "deliver": 1}
    assert report["by_stage"]["blacklist"] == 1


@pytest.mark.parametrize(
    ("method", "url", "body", "status"),
    [
        ("GET", "/api/v1/quarantine?cursor=!!!", None, 400),
        ("GET", "/api/v1/quarantine?limit=0", None, 422),
        ("GET", "/api/v1/quarantine?since=yesterday", None, 422),
        ("GET", "/api/v1/quarantine?since=0001-01-01T00:00:00", None, 422),  # was a 500
        (
            "GET",
            "/api/v1/reports?domain=example.test&since=0001-01-01T00:00:00&until=2026-01-01",
            None,
            422,
        ),
        ("POST", "/api/v1/quarantine/bulk", {"action": "explode", "ids": ["x"]}, 422),
        ("POST", "/api/v1/quarantine/bulk", {"action": "delete", "ids": []}, 422),
        (
            "POST",
            "/api/v1/lists",
            {
                "domain": "example.test",
                "scope": "user",
                "owner": "eve@other.test",
                "list": "whitelist",
                "value": "a.example",
            },
            422,
        ),
        (
            "POST",
            "/api/v1/lists",
            {
                "domain": "example.test",
                "scope": "domain",
                "list": "whitelist",
                "value": "not valid!",
            },
            422,
        ),
        (
            "GET",
            "/api/v1/reports?domain=example.test&since=2027-01-01T00:00:00Z"
            "&until=2026-01-01T00:00:00Z",
            None,
            422,
        ),
    ],
)
async def test_bad_input_gets_a_problem(
    env: Env, method: str, url: str, body: object, status: int
) -> None:
    answer = await env.http.request(method, url, headers=env.auth("alpha"), json=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


async def test_malformed_json_body_is_a_422_problem(env: Env) -> None:
    answer = await env.http.post(
        "/api/v1/lists",
        headers={**env.auth("alpha"), "content-type": "application/json"},
        content=b"{not json",
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"


async def test_openapi_is_served(env: Env) -> None:
    schema = (await env.http.get("/openapi.json")).json()
    assert "prefixItems" not in str(schema)  # tuples made GET /quarantine/{held_id} invalid
    assert "/api/v1/quarantine/{held_id}/release" in schema["paths"]
    assert (await env.http.get("/docs")).status_code == 200


async def test_account_notification_settings(env: Env) -> None:
    await env.hold_spam()
    mine = (await env.http.get("/api/v1/accounts", headers=env.auth("alpha"))).json()
    assert [(a["address"], a["notify"]) for a in mine] == [("bob@example.test", "daily")]
    url = "/api/v1/accounts/bob@example.test"
    changed = await env.http.put(
        url, headers=env.auth("alpha"), json={"notify": "hours", "every_hours": 6}
    )
    assert changed.status_code == 200 and changed.json()["every_hours"] == 6
    bad = await env.http.put(url, headers=env.auth("alpha"), json={"notify": "hours"})
    assert bad.status_code == 422
    foreign = await env.http.put(url, headers=env.auth("beta"), json={"notify": "never"})
    assert foreign.status_code == 404
    assert (await env.http.get("/api/v1/accounts", headers=env.auth("beta"))).json() == []


async def test_every_operation_is_described_with_its_errors(env: Env) -> None:
    schema = (await env.http.get("/openapi.json")).json()
    undescribed = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if not operation.get("description")
    ]
    assert undescribed == []
    listing = schema["paths"]["/api/v1/quarantine"]["get"]["responses"]
    assert {"200", "401", "404", "422"} <= set(listing)
