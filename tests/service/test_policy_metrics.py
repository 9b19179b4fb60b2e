"""Reload status from real policy files: a broken edit shows as invalid, a fixed one as loaded."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from filters.policy import load_policy
from service.classifier import PolicySource
from service.policy_metrics import PolicyStatus

GOOD = 'blacklist = ["spammer.example"]\n'


def touch(path: Path, text: str, mtime: float) -> None:
    path.write_text(text)
    os.utime(path, (mtime, mtime))  # a distinct stamp even within one clock tick


def test_a_broken_policy_edit_is_exported_and_a_fixed_one_loads(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    touch(policy, GOOD, 1_000.0)
    now = [5_000.0]
    status = PolicyStatus(PolicySource(policy, None), load_policy(policy), lambda: now[0])
    registry = CollectorRegistry()
    registry.register(status)
    get = registry.get_sample_value
    assert get("mailmoat_policy_valid") == 1.0
    assert get("mailmoat_policy_loaded_timestamp_seconds") == 5_000.0

    touch(policy, "blacklist = [", 2_000.0)  # a typo: the workers keep the last good policy
    now[0] = 6_000.0
    assert get("mailmoat_policy_valid") == 0.0
    assert get("mailmoat_policy_reload_failures_total") == 1.0
    assert get("mailmoat_policy_loaded_timestamp_seconds") == 5_000.0

    touch(policy, GOOD + 'whitelist = ["friend.example"]\n', 3_000.0)
    now[0] = 7_000.0
    assert get("mailmoat_policy_valid") == 1.0
    assert get("mailmoat_policy_loaded_timestamp_seconds") == 7_000.0
    assert get("mailmoat_policy_reload_failures_total") == 1.0
    assert b"mailmoat_policy_reload_failures_total 1.0" in generate_latest(registry)
