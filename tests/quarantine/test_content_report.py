"""Content rules reported by rule and by user (recipient), over real HTTP from real mail."""

from __future__ import annotations

from pathlib import Path

from tests.quarantine.conftest import start_env, stop_env
from tests.service.gatewayfixtures import POLICY, eventually, message, rows, send

RULES = (
    POLICY
    + """
[[domains."example.test".content_rules]]
name = "no-exe"
attachment_types = [".exe"]
action = "tag_header"

[[domains."example.test".users."bob@example.test".content_rules]]
name = "bob-budget"
words = ["budget"]
action = "log"
"""
)
WINDOW = {
    "domain": "example.test",
    "since": "2026-01-01T00:00:00Z",
    "until": "2027-01-01T00:00:00Z",
}


async def test_each_rule_is_counted_by_name_and_recipient(tmp_path: Path) -> None:
    env = await start_env(tmp_path, RULES)
    try:
        both = message(subject="budget", body="the budget is attached")
        both.add_attachment(b"MZ" + bytes(64), maintype="application", subtype="octet-stream",
                            filename="tool.exe")  # fmt: skip
        await send(env.gateway.smtp_port, both, rcpts=("bob@example.test", "carol@example.test"))
        await send(env.gateway.smtp_port, message(body="budget again"))
        await send(env.gateway.smtp_port, message(body="nothing to see"))
        await eventually(lambda: rows(env.db, "SELECT count(*) FROM events") == [(3,)])
        answer = await env.http.get("/api/v1/reports", headers=env.auth("alpha"), params=WINDOW)
        report = answer.json()
        assert answer.status_code == 200, answer.text
        # One metric symbol for every rule, and each rule by its own name.
        assert report["by_symbol"]["CONTENT_RULE"] == 2
        assert report["content_by_rule"] == {"bob-budget": 2, "no-exe": 1}
        assert report["content_by_user"] == {
            "bob@example.test": {"bob-budget": 2, "no-exe": 1},
            "carol@example.test": {"no-exe": 1},
        }
        other = await env.http.get("/api/v1/reports", headers=env.auth("beta"), params=WINDOW)
        assert other.status_code == 404  # another customer's rules stay hidden
    finally:
        await stop_env(env)
