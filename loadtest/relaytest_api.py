"""``POST /relaytest``: the open-relay test over REST, for a customer's own receiving server.

A customer names one of its domains and the probes go to the server the
gateway delivers that domain to (its configured downstream), so a customer
cannot aim the probes at anybody else. An operator may name any ``target``.
Targets that are not loopback are refused unless the gateway allows remote
ones (``[relaytest] allow_remote``), as on the command line. No ``from
__future__ import annotations``: FastAPI must see the dependency objects.
"""

import asyncio
import ipaddress
from argparse import ArgumentTypeError
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field, field_validator

from loadtest.cli import is_loopback, parse_address
from loadtest.relaytest import FOREIGN, check_domain, run_relay_test
from store.principal import Principal


class RelayTestSettings(BaseModel):
    """``[relaytest]`` of the gateway config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_remote: bool = Field(False, description="let /relaytest probe non-loopback servers")
    timeout: float = Field(30.0, gt=0, description="seconds per SMTP step of a relay probe")


class RelayTestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: str = Field(min_length=1, max_length=253, description="the customer domain to test")
    target: str | None = Field(
        None, max_length=60, description="IP:PORT (operators only); default: the domain's server"
    )
    foreign: str = Field(FOREIGN, min_length=1, max_length=253, description="relay-to domain")

    @field_validator("domain", "foreign")
    @classmethod
    def _domain(cls, value: str) -> str:
        return check_domain(value)

    @field_validator("target")
    @classmethod
    def _ip_port(cls, value: str | None) -> str | None:
        """An address, not a name: a request never makes the gateway resolve names."""
        if value is not None:
            try:
                host, _ = parse_address(value)
                ipaddress.ip_address(host)
            except (ArgumentTypeError, ValueError):
                raise ValueError(f"target must be IP:PORT ([v6]:PORT), not {value!r}") from None
        return value


def create_router(
    principal: Callable[..., Principal | Awaitable[Principal]],
    routes: Mapping[str, tuple[str, int]],
    *,
    settings: RelayTestSettings | None = None,
    helo: str = "relaytest.mailmoat.invalid",
) -> APIRouter:
    """``routes`` maps a customer domain to its receiving server (the gateway's downstreams)."""
    config = settings or RelayTestSettings()
    router = APIRouter(tags=["relaytest"])
    Caller = Annotated[Principal, Depends(principal)]

    @router.post("/relaytest")
    async def relaytest(body: RelayTestRequest, caller: Caller) -> dict[str, Any]:
        """Run the open-relay probes against a customer's server and list which were accepted."""
        domain = body.domain.lower()
        if not caller.sees(domain):
            raise HTTPException(404, "no such domain")
        if body.target is not None:
            if not caller.operator:
                raise HTTPException(403, "only an operator may name a target; omit it")
            host, port = parse_address(body.target)
        elif domain in routes:
            host, port = routes[domain]
        else:
            raise HTTPException(422, f"no receiving server is configured for {domain}")
        if not config.allow_remote and not await asyncio.to_thread(is_loopback, host):
            raise HTTPException(
                403, f"{host} is not a loopback address; remote relay tests are not allowed"
            )
        report = await run_relay_test(
            host, port, local_domain=domain, foreign_domain=body.foreign, helo=helo,
            timeout=config.timeout,
        )  # fmt: skip
        return report.to_dict()  # unreachable: "reachable": false and no probe outcomes

    return router
