"""Fixtures every test package shares."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from store.store import Store
from tests.postgres import RUNNING, answers, fresh_database, reset, throwaway_cluster
from tests.smtpsink import RecordingSink, started_sink

ROOT = Path(__file__).resolve().parents[1]


def debian_tool(binary: str, package: str) -> str:
    """A tool's path, installed by scripts/debian-tool.sh; skipped locally, a failure in CI."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "debian-tool.sh"), binary, package],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = f"{binary} unavailable: {done.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
async def sink() -> AsyncIterator[RecordingSink]:
    """A running ``RecordingSink`` on 127.0.0.1 (ephemeral port), stopped after the test."""
    server = started_sink()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def promtool() -> str:
    return debian_tool("promtool", "prometheus")


@pytest.fixture(scope="session")
def prometheus() -> str:
    return debian_tool("prometheus", "prometheus")


@pytest.fixture(scope="session")
def amtool() -> str:
    return debian_tool("amtool", "prometheus-alertmanager")


@pytest.fixture(scope="session")
def blackbox_exporter() -> str:
    return debian_tool("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server's URL: the one running here, else a throwaway cluster."""
    if answers(RUNNING):
        yield RUNNING
        return
    try:
        with throwaway_cluster() as url:
            yield url
    except RuntimeError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test (dropped afterwards)."""
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_session_database(postgres_server: str) -> Iterator[str]:
    """One database migrated once per session (tests get it emptied)."""
    with fresh_database(postgres_server) as url:
        Store(url).close()
        yield url


@pytest.fixture
def migrated_postgres_url(postgres_session_database: str) -> str:
    """A database at the newest schema with every table empty, for one test."""
    reset(postgres_session_database)
    return postgres_session_database


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Each store test runs on both engines: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "db.sqlite"
    url: str = request.getfixturevalue("migrated_postgres_url")
    return url
