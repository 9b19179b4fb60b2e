"""The HTTP surface over real HTTP: probes, /metrics auth, problem+json, promtool."""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr, ValidationError

from service.http import MetricsAuth, ReadinessCheck, create_app
from service.metrics import GatewayMetrics, RejectReason

ROOT = Path(__file__).resolve().parents[2]
BASIC = MetricsAuth.model_validate({"username": "prometheus", "password": "s3cret"})
BEARER = MetricsAuth.model_validate({"bearer_token": "t0ken"})


def gateway(
    readiness: Mapping[str, ReadinessCheck] | None = None, auth: MetricsAuth | None = None
) -> FastAPI:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(
        registry=registry, domains=["example.test"], queue_lengths=lambda: {"example.test": 2}
    )
    metrics.received()
    metrics.rejected(RejectReason.SIZE)
    metrics.delivered("example.test", 3.5)
    return create_app(
        metrics=metrics, registry=registry, readiness=readiness or {}, auth=auth, check_timeout=0.5
    )


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


async def test_healthz() -> None:
    async with client(gateway()) as http:
        response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_every_check_passes() -> None:
    async def smtp() -> bool:
        return True

    async with client(gateway({"smtp": smtp, "store": lambda: True})) as http:
        response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"smtp": True, "store": True}}


async def test_not_ready_names_failed_checks(caplog: pytest.LogCaptureFixture) -> None:
    def store() -> bool:
        raise OSError("read-only file system")

    async def hangs() -> bool:
        await asyncio.sleep(60)
        return True

    checks: dict[str, ReadinessCheck] = {
        "smtp": lambda: True,
        "store": store,
        "dns": hangs,
        "disk": lambda: False,
    }
    async with client(gateway(checks)) as http:
        response = await http.get("/readyz")
    body = assert_problem(response, 503)
    assert body["failed"] == ["store", "dns", "disk"]
    assert body["checks"] == {"smtp": True, "store": False, "dns": False, "disk": False}
    assert "read-only file system" in caplog.text
    assert "dns timed out" in caplog.text


async def test_metrics_without_auth() -> None:
    async with client(gateway()) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    received = families["mailmoat_messages_received"].samples
    totals = {s.labels["direction"]: s.value for s in received if s.name.endswith("_total")}
    assert totals == {"inbound": 1.0, "outbound": 0.0}
    queue = families["mailmoat_queue_messages"].samples
    assert [(s.labels, s.value) for s in queue] == [({"domain": "example.test"}, 2.0)]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (basic("prometheus", "s3cret"), 200),
        ({"Authorization": "basic " + basic("prometheus", "s3cret")["Authorization"][6:]}, 200),
        (basic("prometheus", "wrong"), 401),
        (basic("someone", "s3cret"), 401),
        ({"Authorization": "Basic !!not-base64!!"}, 401),
        ({"Authorization": "Bearer s3cret"}, 401),
        ({}, 401),
    ],
)
async def test_metrics_basic_auth(headers: dict[str, str], status: int) -> None:
    async with client(gateway(auth=BASIC)) as http:
        response = await http.get("/metrics", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == 'Basic realm="mailmoat", charset="UTF-8"'
        assert "mailmoat_" not in response.text


@pytest.mark.parametrize(
    ("headers", "status", "challenge"),
    [
        ({"Authorization": "Bearer t0ken"}, 200, None),
        (
            {"Authorization": "Bearer t0ken-not"},
            401,
            'Bearer realm="mailmoat", error="invalid_token"',
        ),
        (basic("prometheus", "t0ken"), 401, 'Bearer realm="mailmoat", error="invalid_token"'),
        ({}, 401, 'Bearer realm="mailmoat"'),
    ],
)
async def test_metrics_bearer_auth(
    headers: dict[str, str], status: int, challenge: str | None
) -> None:
    async with client(gateway(auth=BEARER)) as http:
        response = await http.get("/metrics", headers=headers)
    assert response.status_code == status
    assert response.headers.get("www-authenticate") == challenge


async def test_probes_stay_open_when_metrics_need_auth() -> None:
    # Orchestrators' probes send no credentials; only /metrics is protected.
    async with client(gateway(auth=BEARER)) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"username": "u"},
        {"password": "p"},
        {"username": "u", "password": "p", "bearer_token": "t"},
        {"username": "a:b", "password": "p"},
        {"bearer_token": ""},
        {"token": "t"},
    ],
)
def test_auth_config_needs_exactly_one_form(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        MetricsAuth.model_validate(fields)


def test_auth_config_hides_secrets() -> None:
    assert "s3cret" not in repr(BASIC) and "t0ken" not in repr(BEARER)


async def test_errors_are_problem_json() -> None:
    app = gateway()

    # Stands in for a later API endpoint, to show it inherits the handlers.
    @app.get("/items/{number}")
    async def item(number: int) -> dict[str, int]:
        return {"number": number}

    async with client(app) as http:
        missing = await http.get("/nowhere")
        wrong_method = await http.post("/healthz")
        invalid = await http.get("/items/abc")
    assert assert_problem(missing, 404)["title"] == "Not Found"
    assert_problem(wrong_method, 405)
    errors = assert_problem(invalid, 422)["errors"]
    assert isinstance(errors, list) and errors[0]["loc"] == ["path", "number"]


async def test_promtool_accepts_metrics(promtool: str) -> None:
    async with client(gateway(auth=BASIC)) as http:
        response = await http.get("/metrics", auth=("prometheus", "s3cret"))
    assert response.status_code == 200
    check = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await check.communicate(response.content)
    assert check.returncode == 0, output.decode()
    assert output.decode().strip() == ""


@pytest.fixture
async def served() -> AsyncIterator[str]:
    """The gateway app under a real uvicorn server on an ephemeral loopback port."""
    config = uvicorn.Config(
        gateway(auth=BASIC), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_real_server_scrape(served: str) -> None:
    async with httpx.AsyncClient(base_url=served, trust_env=False) as http:
        denied = await http.get("/metrics")
        scraped = await http.get("/metrics", auth=("prometheus", "s3cret"))
    assert denied.status_code == 401
    assert scraped.status_code == 200
    assert 'mailmoat_messages_rejected_total{direction="inbound",reason="size"} 1.0' in scraped.text


async def test_docs_work_offline_and_the_schema_lists_problem_responses() -> None:
    app = create_app(
        metrics=None,
        registry=CollectorRegistry(),
        readiness={"store": lambda: True},
        auth=MetricsAuth(bearer_token=SecretStr("s3cret")),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw"
    ) as http:
        page = (await http.get("/docs")).text
        # Every asset the page loads is served here: no CDN, works without a network.
        assets = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert assets and all(a.startswith("/docs/static/") for a in assets), assets
        for asset in assets:
            assert (await http.get(asset)).status_code == 200, asset
        schema = (await http.get("/openapi.json")).json()
    assert "Problem" in schema["components"]["schemas"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    ready = schema["paths"]["/readyz"]["get"]
    assert "503" in ready["responses"] and ready["description"]
    assert "401" in schema["paths"]["/metrics"]["get"]["responses"]
    problem_json = schema["paths"]["/readyz"]["get"]["responses"]["503"]["content"]
    assert list(problem_json) == ["application/problem+json"]
