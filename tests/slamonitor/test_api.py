"""The SLA REST endpoints over HTTP: tickets, claims, windows, summary; who may see what."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import httpx
import pytest
from fastapi import FastAPI, Header, HTTPException
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from service.problems import install_problem_handlers
from slamonitor.api import create_router
from store.principal import Principal
from store.store import Store
from store.writer import StoreWriter
from tests.slamonitor.conftest import NOV, event, insert

T = TypeVar("T")
OPS = {"x-test-principal": "operator"}
ACME = {"x-test-principal": "customer:acme.test"}
OTHER = {"x-test-principal": "customer:other.test"}


async def principal(x_test_principal: str = Header()) -> Principal:
    """Stands in for the gateway's bearer-token dependency."""
    if x_test_principal == "operator":
        return Principal("ops", operator=True)
    kind, _, domains = x_test_principal.partition(":")
    if kind != "customer":
        raise HTTPException(401, "unknown principal")
    return Principal(kind, operator=False, domains=frozenset(domains.split(",")))


@pytest.fixture
async def http(store: Store, writer: StoreWriter) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(
        create_router(store.engine, principal, write=writer.write, clock=lambda: NOV + 3600)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sla") as client:
        yield client


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


async def test_tickets_open_respond_list(http: httpx.AsyncClient) -> None:
    opened = await http.post(
        "/sla/tickets",
        headers=ACME,
        json={"domain": "ACME.test", "priority": "critical", "subject": "mail stuck"},
    )
    assert opened.status_code == 201
    ticket = opened.json()
    assert ticket["priority"] == "Critical" and ticket["domain"] == "acme.test"
    assert ticket["due_at"] == NOV + 3600 + 2 * 3600
    tid = ticket["id"]
    assert_problem(await http.post(f"/sla/tickets/{tid}/response", headers=ACME), 403)
    assert_problem(await http.get(f"/sla/tickets/{tid}", headers=OTHER), 404)
    assert_problem(await http.get("/sla/tickets/999", headers=ACME), 404)
    answered = await http.post(f"/sla/tickets/{tid}/response", headers=OPS)
    assert answered.json()["first_response_at"] == NOV + 3600
    assert [
        t["id"] for t in (await http.get("/sla/tickets?answered=true", headers=ACME)).json()
    ] == [tid]
    assert (await http.get("/sla/tickets", headers=OTHER)).json() == []
    assert len((await http.get("/sla/tickets?month=2026-11", headers=OPS)).json()) == 1
    assert_problem(await http.get("/sla/tickets?month=0000-01", headers=OPS), 422)  # was a 500
    assert_problem(
        await http.post(
            "/sla/tickets",
            headers=ACME,
            json={"domain": "acme.test", "priority": "S9", "subject": "x"},
        ),
        422,
    )
    assert_problem(
        await http.post(
            "/sla/tickets",
            headers=ACME,
            json={"domain": "other.test", "priority": "Minor", "subject": "x"},
        ),
        404,
    )


async def test_false_positive_claim_flow(engine: Engine, http: httpx.AsyncClient) -> None:
    insert(
        engine,
        [
            event("q1", NOV, None, domain="acme.test", outcome="quarantined", category="spam"),
            event("d1", NOV, 2.0, domain="acme.test"),
            event("q2", NOV, None, domain="other.test", outcome="quarantined", category="spam"),
        ],
    )
    filed = await http.post(
        "/sla/claims/false-positives",
        headers=ACME,
        json={"message_id": "q1", "domain": "acme.test"},
    )
    assert filed.status_code == 201 and filed.json()["state"] == "claimed"
    cid = filed.json()["id"]
    assert_problem(
        await http.post(
            "/sla/claims/false-positives",
            headers=ACME,
            json={"message_id": "q2", "domain": "other.test"},
        ),
        404,
    )
    assert_problem(
        await http.post(
            "/sla/claims/false-positives",
            headers=ACME,
            json={"message_id": "d1", "domain": "acme.test"},
        ),
        409,
    )
    assert_problem(
        await http.post(f"/sla/claims/{cid}/decision", headers=ACME, json={"confirmed": True}), 403
    )
    assert_problem(await http.get(f"/sla/claims/{cid}", headers=OTHER), 404)
    decided = await http.post(
        f"/sla/claims/{cid}/decision", headers=OPS, json={"confirmed": False, "reason": "bulk"}
    )
    assert decided.json()["state"] == "rejected" and decided.json()["reason"] == "bulk"
    assert_problem(await http.post(f"/sla/claims/{cid}/withdraw", headers=ACME), 409)
    spam = await http.post(
        "/sla/claims/false-negatives",
        headers=ACME,
        json={"message_id": "d1", "domain": "acme.test"},
    )
    assert spam.status_code == 201 and spam.json()["kind"] == "fn"
    withdrawn = await http.post(f"/sla/claims/{spam.json()['id']}/withdraw", headers=ACME)
    assert withdrawn.json()["state"] == "withdrawn"
    assert [c["kind"] for c in (await http.get("/sla/claims", headers=ACME)).json()] == ["fn", "fp"]
    assert (await http.get("/sla/claims", headers=OTHER)).json() == []


async def test_declaring_windows_is_operator_only(http: httpx.AsyncClient) -> None:
    window = {"kind": "maintenance", "start": NOV, "end": NOV + 3600, "reason": "upgrade"}
    assert_problem(await http.post("/sla/windows", headers=ACME, json=window), 403)
    created = await http.post("/sla/windows", headers=OPS, json=window)
    assert created.status_code == 201 and created.json()["created_by"] == "ops"
    assert_problem(await http.post("/sla/windows", headers=OPS, json=window | {"end": NOV}), 422)
    assert_problem(
        await http.post("/sla/windows", headers=OPS, json=window | {"kind": "suspension"}), 422
    )
    assert len((await http.get("/sla/windows", headers=OPS)).json()) == 1
    assert len((await http.get("/sla/windows", headers=ACME)).json()) == 1  # global: all see it


async def test_summary_is_month_to_date_for_a_visible_domain(
    engine: Engine, http: httpx.AsyncClient
) -> None:
    insert(
        engine,
        [
            event("a", NOV + 10, 5.0, domain="acme.test"),
            event("b", NOV + 20, 500.0, domain="other.test"),
        ],
    )
    summary = (await http.get("/sla/summary?domain=acme.test", headers=ACME)).json()
    assert summary["month"] == "2026-11" and summary["levels"]["latency"]["measured"] == 1.0
    assert_problem(await http.get("/sla/summary?domain=other.test", headers=ACME), 404)
    assert_problem(await http.get("/sla/summary", headers=ACME), 403)
    everything = (await http.get("/sla/summary", headers=OPS)).json()
    assert everything["levels"]["latency"]["delivered"] == 2


async def test_writes_go_through_the_store_writer_and_a_refused_one_is_not_half_done(
    store: Store, writer: StoreWriter
) -> None:
    """Every write of /sla runs on the store's writer thread (one writer for SQLite), and a
    request the route refuses inside its transaction (403) leaves nothing behind."""
    threads: list[str] = []

    async def write(fn: Callable[[Connection], T]) -> T:
        def on_writer(conn: Connection) -> T:
            threads.append(threading.current_thread().name)
            return fn(conn)

        return await writer.write(on_writer)

    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(create_router(store.engine, principal, write=write, clock=lambda: NOV))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sla"
    ) as http:
        ticket = {"domain": "acme.test", "priority": "critical", "subject": "mail stuck"}
        tid = (await http.post("/sla/tickets", headers=ACME, json=ticket)).json()["id"]
        assert_problem(await http.post(f"/sla/tickets/{tid}/response", headers=ACME), 403)
        window = {"kind": "maintenance", "start": NOV, "end": NOV + 3600, "reason": "upgrade"}
        assert (await http.post("/sla/windows", headers=OPS, json=window)).status_code == 201
        notice = {"kind": "maintenance", "start": NOV, "end": NOV + 60, "title": "upgrade"}
        assert (await http.post("/sla/notices", headers=OPS, json=notice)).status_code == 201
        start = {"started_at": NOV}
        assert (await http.put("/sla/services/acme.test", headers=OPS, json=start)).is_success
        [opened] = (await http.get("/sla/tickets", headers=OPS)).json()
    assert opened["first_response_at"] is None  # the refused response wrote nothing
    assert len(threads) == 5
    assert all(name.startswith("mailmoat-store") for name in threads)
