"""A running gateway with a virtual clock, two customers and an operator, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from quarantine import tokens
from service.app import Gateway
from tests.service.gatewayfixtures import POLICY, eventually, gateway_config, message, rows, send
from tests.smtpsink import RecordingSink, started_sink

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
START = 1_795_000_000.0  # 2026-11-18, a fixed virtual "now"


class VirtualClock:
    """Time the test moves by hand: months of retention pass in a line."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    gateway: Gateway
    sink: RecordingSink
    clock: VirtualClock
    http: httpx.AsyncClient
    tokens: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    @property
    def db(self) -> Path:
        return self.gateway.config.store.path

    async def hold_spam(self, to: str = "bob@example.test", subject: str = "cheap pills") -> str:
        """Send spam that example.test quarantines; returns its quarantine id."""
        before = len(rows(self.db, "SELECT id FROM quarantine"))
        await send(
            self.gateway.smtp_port,
            message(subject=subject, sender="x@spammer.example", to=to),
            sender="x@spammer.example",
            rcpts=(to,),
        )
        await eventually(lambda: len(rows(self.db, "SELECT id FROM quarantine")) > before)
        query = "SELECT id FROM quarantine ORDER BY quarantined_at DESC, rowid DESC LIMIT 1"
        return str(rows(self.db, query)[0][0])

    async def hold_virus(self, to: str = "carol@other.test") -> str:
        msg = message(subject="invoice", to=to)
        msg.add_attachment(
            EICAR, maintype="application", subtype="octet-stream", filename="invoice.com"
        )
        before = len(rows(self.db, "SELECT id FROM quarantine"))
        await send(self.gateway.smtp_port, msg, rcpts=(to,))
        await eventually(lambda: len(rows(self.db, "SELECT id FROM quarantine")) > before)
        query = "SELECT id FROM quarantine WHERE category = 'virus' ORDER BY rowid DESC LIMIT 1"
        return str(rows(self.db, query)[0][0])

    async def released_to(self, address: str) -> list[Any]:
        """Messages released from quarantine that reached ``address``."""

        def arrived() -> list[Any]:
            return [
                r
                for r in self.sink.received
                if address in r.rcpt_tos and b"X-Mailmoat-Released" in r.data
            ]

        await eventually(lambda: bool(arrived()))
        return arrived()

    async def delivered_to(self, address: str, n: int = 1) -> list[Any]:
        async def enough() -> bool:
            return len([r for r in self.sink.received if address in r.rcpt_tos]) >= n

        await eventually(enough)
        return [r for r in self.sink.received if address in r.rcpt_tos]


async def start_env(tmp_path: Path, policy: str = POLICY, **sections: dict[str, Any]) -> Env:
    (tmp_path / "policy.toml").write_text(policy)
    sink = started_sink()
    clock = VirtualClock()
    config = gateway_config(tmp_path, sink.port, **sections)
    gateway = Gateway(config, clock=clock)
    await gateway.start()
    made = {}
    for name, operator, domains in (
        ("alpha", False, ["example.test"]),
        ("beta", False, ["other.test"]),
        ("ops", True, []),
    ):
        _, made[name] = gateway.store.write(
            tokens.create, name=name, operator=operator, domains=domains, now=clock()
        )
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=30)
    return Env(gateway, sink, clock, http, made)


async def stop_env(env: Env) -> None:
    await env.http.aclose()
    await env.gateway.stop()
    env.sink.stop()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    running = await start_env(tmp_path)
    yield running
    await stop_env(running)
