"""Issue 15 over HTTP: customer-fault and beyond-control windows, notices, service starts,
registered users against usage, helpdesk plans and the summary of any month."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from service.problems import install_problem_handlers
from slamonitor import faults
from slamonitor.api import create_router
from slamonitor.config import SlaSettings
from slamonitor.probe import Cause, ProbeResult
from store.schema import messages
from store.writer import StoreWriter
from tests.slamonitor.conftest import NOV, event, insert
from tests.slamonitor.test_api import ACME, OPS, OTHER, assert_problem, principal

NOW = NOV + 20 * 86400
OCT = "2026-10"


@pytest.fixture
async def http(engine: Engine, writer: StoreWriter) -> AsyncIterator[httpx.AsyncClient]:
    settings = SlaSettings(
        helpdesk_plans={"ACME.test": "mithi-priority"}, registered_users={"acme.test": 2}
    )
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(
        create_router(engine, principal, write=writer.write, clock=lambda: NOW, settings=settings)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sla") as client:
        yield client


async def latency_share(http: httpx.AsyncClient) -> float:
    summary = (await http.get("/sla/summary?domain=acme.test", headers=OPS)).json()
    share = summary["levels"]["latency"]["measured"]
    assert isinstance(share, float)
    return share


async def test_a_proposed_customer_fault_exempts_latency_once_confirmed(
    engine: Engine, http: httpx.AsyncClient
) -> None:
    down = NOV + 86400
    insert(
        engine,
        [
            event("a", down - 600, 1.0, domain="acme.test"),
            event("b", down + 60, 900.0, domain="acme.test"),  # waited for their server
            event("c", down + 120, 900.0, domain="acme.test"),
            event("d", down + 7200, 1.0, domain="acme.test"),
        ],
    )
    with engine.begin() as conn:
        wid = faults.propose(conn, "acme.test", down, ProbeResult(False, "refused", Cause.REFUSED))
        faults.stretch(conn, wid, down + 3600)
    assert await latency_share(http) == 0.5  # proposed: nothing exempt yet
    [seen] = (await http.get("/sla/windows", headers=ACME)).json()
    assert (seen["id"], seen["state"], seen["kind"]) == (wid, "proposed", "customer_fault")
    assert (await http.get("/sla/windows", headers=OTHER)).json() == []
    decision = {"confirmed": True, "reason": "their firewall"}
    assert_problem(
        await http.post(f"/sla/windows/{wid}/decision", headers=ACME, json=decision), 403
    )
    assert_problem(
        await http.post(f"/sla/windows/{wid}/decision", headers=OTHER, json=decision), 404
    )
    assert_problem(await http.post("/sla/windows/99/decision", headers=OPS, json=decision), 404)
    confirmed = (await http.post(f"/sla/windows/{wid}/decision", headers=OPS, json=decision)).json()
    assert confirmed["state"] == "confirmed" and confirmed["reason"].endswith("their firewall")
    assert_problem(await http.post(f"/sla/windows/{wid}/decision", headers=OPS, json=decision), 409)
    assert await latency_share(http) == 1.0
    summary = (await http.get("/sla/summary?domain=acme.test", headers=OPS)).json()
    [row] = summary["exclusions"]
    assert (row["kind"], row["levels"], row["events"]) == ("customer_fault", "latency", 2)
    assert summary["events"]["excluded"] == 0  # the other levels still count that mail
    listed = await http.get("/sla/windows?state=confirmed", headers=OPS)
    assert [w["id"] for w in listed.json()] == [wid]


async def test_a_rejected_proposal_exempts_nothing(engine: Engine, http: httpx.AsyncClient) -> None:
    insert(engine, [event("a", NOV + 60, 900.0, domain="acme.test")])
    with engine.begin() as conn:
        wid = faults.propose(conn, "acme.test", NOV, ProbeResult(False, "t/o", Cause.TIMEOUT))
        faults.stretch(conn, wid, NOV + 600)
    rejected = await http.post(
        f"/sla/windows/{wid}/decision", headers=OPS, json={"confirmed": False}
    )
    assert rejected.json()["state"] == "rejected"
    assert await latency_share(http) == 0.0


async def test_beyond_control_exempts_every_level_and_derived_kinds_are_refused(
    engine: Engine, http: httpx.AsyncClient
) -> None:
    insert(engine, [event("a", NOV + 60, 900.0, domain="acme.test")])
    window = {"start": NOV, "end": NOV + 600, "reason": "regional power failure"}
    made = await http.post("/sla/windows", headers=OPS, json=window | {"kind": "beyond_control"})
    assert made.status_code == 201 and made.json()["state"] == "confirmed"
    summary = (await http.get("/sla/summary?domain=acme.test", headers=OPS)).json()
    assert summary["events"]["excluded"] == 1 and summary["exclusions"][0]["levels"] == "all"
    for kind in ("outbreak", "first_30_days", "holiday"):
        assert_problem(
            await http.post("/sla/windows", headers=OPS, json=window | {"kind": kind}), 422
        )
    fault = window | {"kind": "customer_fault"}
    assert_problem(await http.post("/sla/windows", headers=OPS, json=fault), 422)  # no domain
    named = await http.post("/sla/windows", headers=OPS, json=fault | {"domain": "acme.test"})
    assert named.status_code == 201


async def test_customers_see_notices_for_their_domains_and_global_ones(
    http: httpx.AsyncClient,
) -> None:
    day = 86400
    posts = [
        {"kind": "emergency", "start": NOW - 60, "end": NOW + day, "title": "DNS outage"},
        {"kind": "maintenance", "start": NOW + day, "end": NOW + 2 * day, "title": "upgrade",
         "domain": "ACME.test", "body": "new filters"},
        {"kind": "maintenance", "start": NOW - 3 * day, "end": NOW - 2 * day, "title": "past"},
        {"kind": "emergency", "start": NOW, "end": NOW + day, "title": "x", "domain": "other.test"},
    ]  # fmt: skip
    assert_problem(await http.post("/sla/notices", headers=ACME, json=posts[0]), 403)
    for body in posts:
        assert (await http.post("/sla/notices", headers=OPS, json=body)).status_code == 201
    bad = posts[0] | {"end": NOW - 3600}
    assert_problem(await http.post("/sla/notices", headers=OPS, json=bad), 422)
    assert_problem(
        await http.post("/sla/notices", headers=OPS, json=posts[0] | {"kind": "rumour"}), 422
    )
    maintenance = {"kind": "maintenance", "start": NOW + 3 * day, "end": NOW + 4 * day,
                   "reason": "storage move"}  # fmt: skip
    await http.post("/sla/windows", headers=OPS, json=maintenance)
    await http.post(
        "/sla/windows", headers=OPS, json=maintenance | {"kind": "dos", "reason": "flood"}
    )
    titles = [n["title"] for n in (await http.get("/sla/notices", headers=ACME)).json()]
    assert titles == ["past", "DNS outage", "upgrade", "maintenance"]
    current = (await http.get("/sla/notices?current=true", headers=ACME)).json()
    assert [n["title"] for n in current] == ["DNS outage", "upgrade", "maintenance"]
    assert current[2]["body"] == "storage move" and current[2]["source"] == "window"
    others = [n["title"] for n in (await http.get("/sla/notices", headers=OTHER)).json()]
    assert others == ["past", "DNS outage", "x", "maintenance"]
    assert len((await http.get("/sla/notices", headers=OPS)).json()) == 5


async def test_service_start_is_recorded_by_an_operator_and_starts_the_grace_period(
    engine: Engine, http: httpx.AsyncClient
) -> None:
    insert(engine, [event("a", NOV + 60, 900.0, domain="acme.test")])
    start = {"started_at": NOV - 10 * 86400}
    assert_problem(await http.put("/sla/services/acme.test", headers=ACME, json=start), 403)
    assert_problem(await http.put("/sla/services/other.test", headers=ACME, json=start), 404)
    assert_problem(await http.put("/sla/services/acme.test", headers=OPS, json={}), 422)
    assert_problem(
        await http.put("/sla/services/acme.test", headers=OPS, json={"started_at": -1}), 422
    )
    made = (await http.put("/sla/services/ACME.test", headers=OPS, json=start)).json()
    assert made == {
        "domain": "acme.test",
        "started_at": start["started_at"],
        "measured_from": NOV + 20 * 86400,
    }
    summary = (await http.get("/sla/summary?domain=acme.test", headers=OPS)).json()
    assert summary["exclusions"][0]["kind"] == "first_30_days"
    assert summary["events"]["excluded"] == 1
    moved = {"started_at": NOV - 40 * 86400}  # a correction: already measured this month
    await http.put("/sla/services/acme.test", headers=OPS, json=moved)
    assert [s["started_at"] for s in (await http.get("/sla/services", headers=ACME)).json()] == [
        moved["started_at"]
    ]
    assert (await http.get("/sla/services", headers=OTHER)).json() == []
    assert await latency_share(http) == 0.0


def spooled(message_id: str, at: float, rcpts: list[str]) -> dict[str, object]:
    return {
        "id": message_id, "received_at": at, "client_ip": None, "helo": None,
        "mail_from": "a@sender.test", "rcpt_tos": json.dumps(rcpts), "size": 10, "raw": b"x",
        "state": "filtered", "worker": 0,
    }  # fmt: skip


async def test_registered_users_against_distinct_recipients_scanned(
    engine: Engine, http: httpx.AsyncClient
) -> None:
    mail = [
        ("m1", NOV + 60, ["ann@acme.test", "bob@acme.test", "zed@other.test"]),
        ("m2", NOV + 120, ["ANN@acme.test", "cy@acme.test"]),
        ("m3", NOV - 60, ["old@acme.test"]),  # October
    ]
    with engine.begin() as conn:
        conn.execute(messages.insert(), [spooled(*m) for m in mail])
    insert(
        engine,
        [
            event("m1", NOV + 60, domain="acme.test", recipients=2),
            event("m1", NOV + 60, domain="other.test"),
            event("m2", NOV + 120, domain="acme.test", recipients=2),
            event("m3", NOV - 60, domain="acme.test"),
        ],
    )
    used = (await http.get("/sla/usage", headers=ACME)).json()
    assert used == {
        "month": "2026-11",
        "domains": {
            "acme.test": {
                "registered_users": 2, "scanned_recipients": 3, "registered_band": 5,
                "actual_band": 5, "exceeds": True,
            }
        },
    }  # fmt: skip
    everyone = (await http.get("/sla/usage", headers=OPS)).json()["domains"]
    assert everyone["other.test"]["scanned_recipients"] == 1
    assert everyone["other.test"]["registered_users"] is None
    october = (await http.get(f"/sla/usage?month={OCT}&domain=acme.test", headers=ACME)).json()
    assert october["domains"]["acme.test"]["scanned_recipients"] == 1
    assert october["domains"]["acme.test"]["exceeds"] is False
    assert_problem(await http.get("/sla/usage?domain=other.test", headers=ACME), 404)
    assert_problem(await http.get("/sla/usage?month=2026-13", headers=ACME), 422)
    summary = (await http.get("/sla/summary?domain=acme.test", headers=ACME)).json()
    assert summary["usage"]["acme.test"]["scanned_recipients"] == 3


async def test_tickets_follow_the_domains_helpdesk_plan(http: httpx.AsyncClient) -> None:
    ticket = {"domain": "acme.test", "priority": "s1", "subject": "down"}
    opened = await http.post("/sla/tickets", headers=ACME, json=ticket)
    assert opened.status_code == 201 and opened.json()["priority"] == "S1"
    other = ticket | {"domain": "other.test"}
    assert_problem(await http.post("/sla/tickets", headers=OTHER, json=other), 422)
    assert (
        await http.post("/sla/tickets", headers=OTHER, json=other | {"priority": "Major"})
    ).status_code == 201
    helpdesk = (await http.get("/sla/summary", headers=OPS)).json()["levels"]["helpdesk"]
    assert helpdesk["table"] == "telstra" and helpdesk["priorities"]["Major"]["pending"] == 1
    assert helpdesk["plans"]["mithi-priority"]["S1"]["pending"] == 1
    mine = (await http.get("/sla/summary?domain=acme.test", headers=ACME)).json()
    assert mine["levels"]["helpdesk"]["table"] == "mithi-priority"


async def test_summary_of_any_month(engine: Engine, http: httpx.AsyncClient) -> None:
    insert(engine, [event("a", NOV - 86400, 5.0, domain="acme.test")])
    past = (await http.get(f"/sla/summary?domain=acme.test&month={OCT}", headers=ACME)).json()
    assert past["month"] == OCT and past["levels"]["latency"]["delivered"] == 1
    now = (await http.get("/sla/summary?domain=acme.test", headers=ACME)).json()
    assert now["month"] == "2026-11" and now["levels"]["latency"]["delivered"] == 0
    assert_problem(await http.get("/sla/summary?month=Nov", headers=OPS), 422)


def test_helpdesk_plans_name_known_tables() -> None:
    with pytest.raises(ValueError, match=r"helpdesk_plans.acme.test 'gold' is not one of"):
        SlaSettings(helpdesk_plans={"acme.test": "gold"})
    with pytest.raises(ValueError, match="registered users must be at least 1"):
        SlaSettings(registered_users={"acme.test": 0})
