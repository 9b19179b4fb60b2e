"""Fixtures every test package shares."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

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
