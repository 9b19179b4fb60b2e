"""Fixtures shared by the service tests: a recording downstream SMTP server on loopback, and
gateways on ephemeral ports that are stopped after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from service.app import Gateway
from tests.service.gatewayfixtures import gateway_config
from tests.smtpsink import RecordingSink

Start = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def start_gateway(tmp_path: Path, sink: RecordingSink) -> AsyncIterator[Start]:
    """Start gateways on ephemeral ports (config sections as keyword overrides)."""
    running: list[Gateway] = []

    async def start(**sections: dict[str, Any]) -> Gateway:
        gateway = Gateway(gateway_config(tmp_path, sink.port, **sections))
        await gateway.start()
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        await gateway.stop()
