"""Fixtures shared by the service tests: a recording downstream SMTP server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.smtpsink import RecordingSink, started_sink


@pytest.fixture
async def sink() -> AsyncIterator[RecordingSink]:
    """A running ``RecordingSink`` on 127.0.0.1 (ephemeral port), stopped after the test."""
    server = started_sink()
    yield server
    server.stop()
