"""The gateway's HTTP surface: Prometheus scrapes (optionally authenticated) and health probes."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import importlib.metadata
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Self

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from starlette.concurrency import run_in_threadpool

from service.docs import install_docs
from service.metrics import GatewayMetrics, exposition_registry
from service.problems import install_problem_handlers, problem

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], bool | Awaitable[bool]]

REALM = "mailmoat"

DESCRIPTION = """\
Customers (a bearer token scoped to their domains) list, release and delete held mail,
manage sender lists and digest settings, and read reports. Operators (an operator token)
also decide virus release requests and declare SLA windows. Every error is
`application/problem+json` (RFC 9457). Tokens: `mailmoat token create`.
"""


def _version() -> str:
    try:
        return importlib.metadata.version("mailmoat")
    except importlib.metadata.PackageNotFoundError:  # a source tree, not installed
        return "unknown"


class MetricsAuth(BaseModel):
    """Credentials a scraper must send for ``/metrics``: HTTP basic or a bearer token.

    These are the two forms Prometheus' scrape config speaks: ``basic_auth``
    (``username``, ``password``) and ``authorization`` (type ``Bearer``,
    ``credentials``; the older ``bearer_token`` sends the same header).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str | None = Field(
        default=None,
        min_length=1,
        pattern=r"^[^:]*$",
        description="Basic auth user name (Prometheus basic_auth.username); no colon.",
    )
    password: SecretStr | None = Field(
        default=None,
        min_length=1,
        description="Basic auth password (Prometheus basic_auth.password).",
    )
    bearer_token: SecretStr | None = Field(
        default=None,
        min_length=1,
        description="Bearer token (Prometheus authorization.credentials or bearer_token).",
    )

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        basic = self.username is not None or self.password is not None
        if basic and (self.username is None or self.password is None):
            raise ValueError("basic auth needs both username and password")
        if basic == (self.bearer_token is not None):
            raise ValueError("set either username and password (basic) or bearer_token")
        return self

    @property
    def scheme(self) -> str:
        return "Bearer" if self.bearer_token is not None else "Basic"

    def allows(self, authorization: str | None) -> bool:
        """True when an ``Authorization`` header value carries these credentials."""
        scheme, _, value = (authorization or "").strip().partition(" ")
        # Schemes are case-insensitive (RFC 9110 section 11.1).
        if scheme.lower() != self.scheme.lower():
            return False
        value = value.strip()
        if self.bearer_token is not None:
            return _same(value, self.bearer_token.get_secret_value())
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        assert self.username is not None and self.password is not None  # by _one_form
        # Both comparisons always run, so timing does not reveal whether the user was right.
        user_ok = _same(user, self.username)
        password_ok = _same(password, self.password.get_secret_value())
        return bool(sep) and user_ok and password_ok

    def challenge(self, credentials_sent: bool) -> str:
        """The ``WWW-Authenticate`` value for a 401 (RFC 7617 for basic, RFC 6750 for bearer)."""
        if self.bearer_token is None:
            return f'Basic realm="{REALM}", charset="UTF-8"'
        if credentials_sent:
            return f'Bearer realm="{REALM}", error="invalid_token"'
        return f'Bearer realm="{REALM}"'


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _auth_dependency(auth: MetricsAuth | None) -> Callable[[Request], Awaitable[None]]:
    # Async because it does no I/O: FastAPI would send a plain def to the thread pool.
    async def require(request: Request) -> None:
        header = request.headers.get("authorization")
        if auth is not None and not auth.allows(header):
            detail = "wrong credentials" if header else "credentials required"
            challenge = auth.challenge(credentials_sent=header is not None)
            raise HTTPException(401, detail, headers={"WWW-Authenticate": challenge})

    return require


async def _run_check(name: str, check: ReadinessCheck, timeout: float) -> bool:
    """Run one readiness check; a check that raises or hangs counts as failed."""
    try:
        async with asyncio.timeout(timeout):
            if inspect.iscoroutinefunction(check):
                outcome = await check()
            else:
                # Sync checks may touch the disk, so they run off the event loop.
                outcome = await run_in_threadpool(check)
                if inspect.isawaitable(outcome):
                    outcome = await outcome
    except TimeoutError:
        log.warning("readiness check %s timed out after %.1fs", name, timeout)
        return False
    except Exception:
        log.exception("readiness check %s raised", name)
        return False
    if outcome is not True:
        log.warning("readiness check %s failed", name)
    return outcome is True


def create_app(
    *,
    metrics: GatewayMetrics | None,
    registry: CollectorRegistry,
    readiness: Mapping[str, ReadinessCheck],
    auth: MetricsAuth | None = None,
    check_timeout: float = 2.0,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The HTTP app: ``/metrics`` for Prometheus, ``/healthz`` (alive), ``/readyz`` (can serve).

    ``readiness`` maps a name ("smtp", "store") to a check; sync checks run in
    a worker thread, async ones on the loop, each bounded by ``check_timeout``
    seconds. ``metrics`` supplies the live queue collector in multiprocess mode.
    """
    app = FastAPI(
        title="Mailmoat gateway",
        version=_version(),
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    install_docs(app, metrics_auth=auth is not None)
    for router in routers:
        app.include_router(router)
    checks = dict(readiness)

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        """Always `{"status": "ok"}` while the HTTP server runs; restart the gateway if not."""
        return {"status": "ok"}

    @app.get(
        "/readyz", response_model=None, tags=["operations"], summary="Readiness: can serve mail"
    )
    async def readyz() -> dict[str, object] | JSONResponse:
        """Runs every readiness check (SMTP listener, store, ...) with a timeout each.

        200 with each check's result when all pass; 503 problem+json naming the
        failed checks otherwise, so a load balancer stops sending mail here.
        """
        results = await asyncio.gather(
            *(_run_check(name, check, check_timeout) for name, check in checks.items())
        )
        outcome = dict(zip(checks, results, strict=True))
        failed = [name for name, ok in outcome.items() if not ok]
        if failed:
            detail = "not ready: " + ", ".join(failed)
            return problem(503, detail, failed=failed, checks=outcome)
        return {"status": "ready", "checks": outcome}

    # A plain def: serialising reads the queue store, so FastAPI runs it in a worker thread.
    @app.get(
        "/metrics",
        dependencies=[Depends(_auth_dependency(auth))],
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "text format"}},
    )
    def scrape() -> Response:
        """Gateway counters, queue and quarantine gauges, month-to-date SLA figures."""
        body = generate_latest(exposition_registry(registry, metrics))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app
