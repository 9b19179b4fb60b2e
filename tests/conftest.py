"""Fixtures every test package shares."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool's path (installed by scripts/promtool.sh); skipped locally, a failure in CI."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "promtool.sh")], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        reason = f"promtool unavailable: {done.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return done.stdout.strip().splitlines()[-1]
