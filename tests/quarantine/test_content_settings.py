"""Customers set their own content rules and stage actions over REST, within the operator's
bounds; the next message already follows them. Real gateway, real HTTP, real SMTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.config import ConfigError, load_config
from tests.quarantine.conftest import Env, start_env, stop_env
from tests.service.gatewayfixtures import eventually, message, rows, send

URL = "/api/v1/content-settings/example.test"
BOUNDS = {
    "customer_rules": {
        "max_rules": 2,
        "max_pattern_length": 20,
        "content_actions": ["delete", "tag_header", "copy", "log", "compress"],
        "stage_actions": {"blacklist": ["tag_subject", "quarantine"]},
    }
}


@pytest.fixture
async def bounded(tmp_path: Path) -> Any:
    env = await start_env(tmp_path, quarantine=BOUNDS)
    yield env
    await stop_env(env)


async def test_a_rule_and_a_stage_action_apply_to_the_next_message(bounded: Env) -> None:
    env = bounded
    empty = await env.http.get(URL, headers=env.auth("alpha"))
    assert empty.status_code == 200
    assert empty.json()["content_rules"] == [] and empty.json()["actions"] == {}
    assert empty.json()["bounds"]["max_rules"] == 2
    settings = {
        "content_rules": [
            {"name": "no-exe", "attachment_types": [".exe"], "action": "delete"},
        ],
        "actions": {"blacklist": "tag_subject"},
    }
    stored = await env.http.put(URL, headers=env.auth("alpha"), json=settings)
    assert stored.status_code == 200, stored.text
    assert stored.json()["content_rules"][0]["name"] == "no-exe"
    assert stored.json()["actions"] == {"blacklist": "tag_subject"}
    assert stored.json()["updated_by"] == "alpha"
    assert (await env.http.get(URL, headers=env.auth("alpha"))).json()["actions"] == {
        "blacklist": "tag_subject"
    }

    # Blacklisted in the policy file (quarantined there): now tagged and delivered.
    await send(env.gateway.smtp_port, message(subject="offer", sender="x@spammer.example"),
               sender="x@spammer.example")  # fmt: skip
    (tagged,) = await env.delivered_to("bob@example.test")
    assert b"Subject: [SPAM] offer" in tagged.data
    # A customer rule deletes an executable: nothing is delivered, the event says why.
    exe = message(subject="tool")
    exe.add_attachment(b"MZ" + bytes(50), maintype="application", subtype="octet-stream",
                       filename="tool.exe")  # fmt: skip
    await send(env.gateway.smtp_port, exe)
    query = "SELECT outcome, category FROM events WHERE symbols LIKE '%CONTENT_RULE%'"
    await eventually(lambda: rows(env.db, query) == [("deleted", "content")])
    assert len(env.sink.received) == 1


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        (
            {"content_rules": [{"name": f"r{i}", "words": ["x"]} for i in range(3)]},
            ["body", "content_rules"],
            "at most 2 rules",
        ),
        (
            {"content_rules": [{"name": "r", "header": "Subject", "pattern": "a" * 21}]},
            ["body", "content_rules", 0, "pattern"],
            "at most 20 characters",
        ),
        (
            {"content_rules": [{"name": "r", "words": ["x"], "action": "redirect"}]},
            ["body", "content_rules", 0, "action"],
            "'redirect' is not allowed",
        ),
        (
            {"content_rules": [{"name": "r", "words": ["x"], "action": "copy"}]},
            ["body", "content_rules", 0, "admin"],
            "a copy rule names its `admin`",
        ),
        (
            {
                "content_rules": [
                    {
                        "name": "r",
                        "words": ["x"],
                        "action": "copy",
                        "admin": "boss@elsewhere.example",
                    }
                ]
            },
            ["body", "content_rules", 0, "admin"],
            "not an address in example.test",
        ),
        (
            {"content_rules": [{"name": "r", "words": ["x"]}, {"name": "r", "words": ["y"]}]},
            ["body", "content_rules", 1, "name"],
            "used twice",
        ),
        (
            {"content_rules": [{"name": "r", "header": "Subject", "pattern": "("}]},
            ["body", "content_rules", 0],
            "bad regex",
        ),
        (
            {"content_rules": [{"name": "r"}]},
            ["body", "content_rules", 0],
            "at least one condition",
        ),
        ({"actions": {"blacklist": "delete"}}, ["body", "actions", "blacklist"], "not allowed"),
        ({"actions": {"signatures": "tag_header"}}, ["body", "actions", "signatures"], "none"),
        (
            {"actions": {"heuristics": "delete"}},
            ["body", "actions", "heuristics", "[key]"],
            "'dnsbl'",
        ),
        ({"actions": {"blacklist": "bounce"}}, ["body", "actions", "blacklist"], "unknown"),
    ],
)
async def test_bad_settings_get_a_422_naming_the_field(
    bounded: Env, body: dict[str, Any], loc: list[Any], words: str
) -> None:
    answer = await bounded.http.put(URL, headers=bounded.auth("alpha"), json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problems = answer.json()["errors"]
    assert any(p["loc"] == loc and words in p["msg"] for p in problems), problems
    unchanged = await bounded.http.get(URL, headers=bounded.auth("alpha"))
    assert unchanged.json()["content_rules"] == []


async def test_settings_are_each_customers_own(bounded: Env) -> None:
    body = {"content_rules": [{"name": "r", "words": ["x"]}]}
    for method in ("GET", "PUT"):
        answer = await bounded.http.request(method, URL, headers=bounded.auth("beta"),
                                            json=body if method == "PUT" else None)  # fmt: skip
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
    assert (await bounded.http.get(URL)).status_code == 401
    ops = await bounded.http.put(URL, headers=bounded.auth("ops"), json=body)
    assert ops.status_code == 200 and ops.json()["updated_by"] == "ops"


def test_bounds_in_the_gateway_config_name_a_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[quarantine.customer_rules.stage_actions]\nheuristics = ["delete"]\n')
    with pytest.raises(
        ConfigError, match=r"quarantine\.customer_rules\.stage_actions: .*heuristics"
    ):
        load_config(path, environ={})
    path.write_text('[quarantine.customer_rules.stage_actions]\nblacklist = ["bounce"]\n')
    with pytest.raises(ConfigError, match=r"customer_rules\.stage_actions: .*unknown action"):
        load_config(path, environ={})
