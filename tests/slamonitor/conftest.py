"""Fixtures for the SLA monitor tests: a migrated SQLite store and synthetic event records."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from store.schema import events
from store.store import Store
from store.writer import StoreWriter

ROOT = Path(__file__).resolve().parents[2]
NOV = 1793491200.0
"""2026-11-01T00:00:00Z, the start of the month most tests report on."""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "gateway.db")
    yield opened
    opened.close()


@pytest.fixture
def engine(store: Store) -> Engine:
    return store.engine


@pytest.fixture
async def writer(store: Store) -> AsyncIterator[StoreWriter]:
    """The store's writer, as the gateway hands it to the REST routes that write."""
    running = StoreWriter(store)
    yield running
    await running.close()


def event(
    message_id: str,
    received_at: float,
    latency: float | None = 1.0,
    *,
    domain: str = "example.test",
    category: str = "clean",
    outcome: str = "delivered",
    recipients: int = 1,
    hits: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One event row; ``latency`` None means not delivered."""
    return {
        "message_id": message_id,
        "domain": domain,
        "received_at": received_at,
        "filtered_at": received_at,
        "delivered_at": None if latency is None else received_at + latency,
        "action": "deliver" if outcome == "delivered" else "quarantine",
        "category": category,
        "outcome": outcome,
        "score": 0.0,
        "symbols": json.dumps([h["symbol"] for h in hits or []]),
        "hits": json.dumps(hits or []),
        "size": 1000,
        "recipients": recipients,
        "detail": None,
    }


def insert(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(events.insert(), rows)
