"""Schemathesis against the live OpenAPI schema: no input, however odd, gets a 500."""

from __future__ import annotations

import asyncio

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.quarantine.conftest import Env

EXAMPLES_PER_OPERATION = 12


def _fuzz(base_url: str, token: str) -> list[str]:
    """Every operation with generated inputs; returns the failures (5xx) found."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        run()
    return failures


async def test_no_generated_request_gets_a_500(env: Env) -> None:
    await env.hold_spam()
    await env.hold_virus()
    base_url = f"http://127.0.0.1:{env.gateway.http_port}"
    for who in ("alpha", "ops"):
        failures = await asyncio.to_thread(_fuzz, base_url, env.tokens[who])
        assert failures == [], failures
