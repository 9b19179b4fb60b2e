"""The open-relay test against a deliberately open server, a closed one and the gateway itself:
library, ``mailmoat relaytest`` and ``POST /relaytest``."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI, Header, HTTPException

from loadtest.relaytest import relay_probes, run_relay_test
from loadtest.relaytest_api import RelayTestSettings, create_router
from service.app import Gateway
from service.cli import main
from service.problems import install_problem_handlers
from store.principal import Principal
from tests.service.gatewayfixtures import gateway_config
from tests.smtpsink import RecordingSink

PLAIN_LOCAL = re.compile(r"[a-z0-9._+-]+@acme\.test", re.IGNORECASE)


class _Controller(Controller):
    """Port 0, then the real port before aiosmtpd's readiness probe connects."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class OpenRelay:
    """Takes any recipient at all: the misconfiguration the test exists to find."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


class Closed:
    """Takes plain addresses of its own domain only, as a customer's server should."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not PLAIN_LOCAL.fullmatch(address):
            return "554 5.7.1 relay access denied"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


def serve(handler: object) -> Iterator[tuple[str, int]]:
    controller = _Controller(handler, hostname="127.0.0.1", port=0)
    controller.start()
    yield "127.0.0.1", controller.port
    controller.stop()


@pytest.fixture
def open_server() -> Iterator[tuple[str, int]]:
    yield from serve(OpenRelay())


@pytest.fixture
def closed_server() -> Iterator[tuple[str, int]]:
    yield from serve(Closed())


async def test_an_open_server_accepts_the_relay_probes(open_server: tuple[str, int]) -> None:
    report = await run_relay_test(*open_server, local_domain="acme.test", timeout=10)
    assert report.control.accepted and report.open_relay
    accepted = set(report.accepted)
    for name in ("foreign_recipient", "local_sender", "empty_sender", "percent_hack", "bang_path"):
        assert name in accepted
    assert [o.probe for o in report.outcomes] == [p.name for p in relay_probes("acme.test")]
    by_name = {o.probe: o for o in report.outcomes}
    assert by_name["percent_hack"].rcpt_to == "relaytest%example.net@acme.test"
    assert by_name["source_route"].rcpt_to == "@acme.test:relaytest@example.net"
    assert by_name["percent_hack_ip_literal"].rcpt_to == "relaytest%example.net@[127.0.0.1]"
    assert by_name["empty_sender"].mail_from == ""


async def test_a_closed_server_refuses_every_probe(closed_server: tuple[str, int]) -> None:
    report = await run_relay_test(*closed_server, local_domain="acme.test", timeout=10)
    assert report.control.accepted and report.control.code == 250
    assert not report.open_relay and report.accepted == []
    assert len(report.outcomes) == len(relay_probes("acme.test"))
    assert all(o.code is not None and o.code >= 500 for o in report.outcomes)


async def test_the_gateway_itself_is_no_open_relay(tmp_path: Path, sink: RecordingSink) -> None:
    gateway = Gateway(gateway_config(tmp_path, sink.port))
    await gateway.start()
    try:
        report = await run_relay_test(
            "127.0.0.1", gateway.smtp_port, local_domain="example.test", timeout=10
        )
    finally:
        await gateway.stop()
    assert report.control.accepted, report.control
    # The gateway refuses every probe: foreign final domains (relaying denied) and, by
    # default, routing local parts (`%`, `!`, quoted `@`) of its own domains too
    # (`smtp.allow_routing_localparts`), so none reaches the customer's server.
    assert [o.probe for o in report.outcomes if o.accepted] == [], report.to_dict()


def test_command_exit_status_and_json(
    open_server: tuple[str, int], closed_server: tuple[str, int], tmp_path: Path
) -> None:
    out = tmp_path / "relay.json"
    target = "{}:{}".format(*open_server)
    assert main(["relaytest", target, "--domain", "acme.test", "--json", str(out)]) == 1
    saved = json.loads(out.read_text())
    assert saved["open_relay"] is True and "foreign_recipient" in saved["accepted"]
    assert main(["relaytest", "{}:{}".format(*closed_server), "--domain", "acme.test"]) == 0


async def test_an_unreachable_server_is_reported_untested(
    closed_server: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    host, _ = closed_server
    with socket.socket() as unused:  # bound, never listening: connections are refused
        unused.bind((host, 0))
        port = unused.getsockname()[1]
        report = await run_relay_test(host, port, local_domain="acme.test", timeout=5)
        assert (report.reachable, report.outcomes, report.open_relay) == (False, [], False)
        assert (
            await asyncio.to_thread(main, ["relaytest", f"{host}:{port}", "--domain", "acme.test"])
            == 2
        )
    assert "cannot test" in capsys.readouterr().err


def test_command_refuses_a_remote_target_before_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["relaytest", "192.0.2.1:25", "--domain", "acme.test"]) == 2
    assert "192.0.2.1 is not a loopback address" in capsys.readouterr().err


def test_command_refuses_a_target_without_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["relaytest", "localhost", "--domain", "acme.test"])
    assert exited.value.code == 2 and "expected HOST:PORT" in capsys.readouterr().err


async def principal(x_test_principal: str = Header()) -> Principal:
    if x_test_principal == "operator":
        return Principal("ops", operator=True)
    kind, _, domains = x_test_principal.partition(":")
    if kind != "customer":
        raise HTTPException(401, "unknown principal")
    return Principal(kind, operator=False, domains=frozenset(domains.split(",")))


OPS = {"x-test-principal": "operator"}
ACME = {"x-test-principal": "customer:acme.test,remote.test,unrouted.test"}


async def test_rest_endpoint(open_server: tuple[str, int], closed_server: tuple[str, int]) -> None:
    routes = {"acme.test": open_server, "remote.test": ("192.0.2.1", 25)}
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(create_router(principal, routes, settings=RelayTestSettings(timeout=10)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        mine = await http.post("/relaytest", headers=ACME, json={"domain": "ACME.test"})
        assert mine.status_code == 200 and mine.json()["open_relay"] is True
        assert mine.json()["target"] == "{}:{}".format(*open_server)
        closed = "{}:{}".format(*closed_server)
        named = await http.post(
            "/relaytest", headers=OPS, json={"domain": "acme.test", "target": closed}
        )
        assert named.json()["open_relay"] is False and named.json()["target"] == closed
        for headers, body, status in [
            (ACME, {"domain": "acme.test", "target": closed}, 403),  # customers cannot aim it
            (ACME, {"domain": "other.test"}, 404),
            (ACME, {"domain": "unrouted.test"}, 422),
            (ACME, {"domain": "remote.test"}, 403),  # not loopback, remote not allowed
            (OPS, {"domain": "acme.test", "target": "nowhere"}, 422),
            (OPS, {"domain": "acme.test", "target": "localhost:25"}, 422),  # names: no lookups
            (OPS, {"domain": "acme.test\r\nRCPT TO:<x@y>", "target": closed}, 422),
            (OPS, {"domain": "acme.test", "target": closed, "foreign": "a b"}, 422),
            (OPS, {"domain": "acme.test", "extra": 1}, 422),
        ]:
            response = await http.post("/relaytest", headers=headers, json=body)
            assert response.status_code == status, (body, response.text)
            assert response.headers["content-type"] == "application/problem+json"
