"""The REST API's rough edges a new customer met (issue 13), each fixed and held in place."""

from __future__ import annotations

import re

from tests.quarantine.conftest import Env


async def test_release_without_a_body_goes_to_the_original_recipients(env: Env) -> None:
    spam = await env.hold_spam()
    answer = await env.http.post(f"/api/v1/quarantine/{spam}/release", headers=env.auth("alpha"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["to"] == ["bob@example.test"]
    await env.released_to("bob@example.test")


async def test_a_refused_virus_release_points_to_the_release_request(env: Env) -> None:
    virus = await env.hold_virus()
    answer = await env.http.post(f"/api/v1/quarantine/{virus}/release", headers=env.auth("beta"))
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    assert f"POST /api/v1/quarantine/{virus}/release-requests" in answer.json()["detail"]
    assert answer.headers["link"] == (
        f'</api/v1/quarantine/{virus}/release-requests>; rel="release-request"'
    )


async def test_release_requests_page_like_the_quarantine_list(env: Env) -> None:
    virus = await env.hold_virus()
    made = await env.http.post(
        f"/api/v1/quarantine/{virus}/release-requests",
        headers=env.auth("beta"),
        json={"reason": "the invoice is genuine"},
    )
    assert made.status_code == 201
    listed = (await env.http.get("/api/v1/release-requests", headers=env.auth("beta"))).json()
    assert set(listed) == {"items", "next_cursor"} and listed["next_cursor"] is None
    assert [r["id"] for r in listed["items"]] == [made.json()["id"]]
    assert (await env.http.get("/api/v1/release-requests", headers=env.auth("alpha"))).json()[
        "items"
    ] == []


async def test_reports_infer_the_domain_of_a_single_domain_token(env: Env) -> None:
    await env.hold_spam()
    window = "since=2026-01-01T00:00:00Z&until=2027-01-01T00:00:00Z"
    got = await env.http.get(f"/api/v1/reports?{window}", headers=env.auth("alpha"))
    assert got.status_code == 200 and got.json()["domain"] == "example.test"
    assert got.json()["messages"] == 1
    ops = await env.http.get(f"/api/v1/reports?{window}", headers=env.auth("ops"))
    assert ops.status_code == 422 and "give `domain`" in ops.json()["detail"]


async def test_the_list_says_why_with_rounded_scores(env: Env) -> None:
    await env.hold_spam()
    virus = await env.hold_virus()
    (spam,) = (await env.http.get("/api/v1/quarantine", headers=env.auth("alpha"))).json()["items"]
    assert "BLACKLIST_PRIVATE" in spam["why"]
    assert spam["score"] == round(spam["score"], 2)
    (held,) = (await env.http.get("/api/v1/quarantine", headers=env.auth("beta"))).json()["items"]
    assert held["id"] == virus and held["viruses"] and held["why"].startswith("virus ")


async def test_subject_filter(env: Env) -> None:
    await env.hold_spam(subject="cheap pills")
    await env.hold_spam(subject="Rolex 100% off")
    alpha = env.auth("alpha")
    for query, subjects in (("pills", ["cheap pills"]), ("100%", ["Rolex 100% off"]), ("_", [])):
        got = await env.http.get("/api/v1/quarantine", params={"subject": query}, headers=alpha)
        assert [i["subject"] for i in got.json()["items"]] == subjects, query


async def test_every_operation_documents_its_real_errors(env: Env) -> None:
    schema = (await env.http.get("/openapi.json")).json()
    operations = [
        (path, method, op)
        for path, methods in schema["paths"].items()
        if path.startswith("/api/v1/") and not path.startswith("/api/v1/sla")
        for method, op in methods.items()
    ]
    assert len(operations) >= 15
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("description"), where
        assert "401" in op["responses"], where
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                assert "application/problem+json" in response["content"], where
        if re.search(r"\{[a-z_]+\}", path):
            assert "404" in op["responses"] and "422" in op["responses"], where
    release = schema["paths"]["/api/v1/quarantine/{held_id}/release"]["post"]
    assert {"401", "403", "404", "422"} <= set(release["responses"])
    assert release.get("requestBody", {}).get("required") is not True
    decide = schema["paths"]["/api/v1/release-requests/{request_id}/decision"]["post"]
    assert {"401", "403", "404", "409", "422"} <= set(decide["responses"])
