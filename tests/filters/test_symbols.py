"""The symbol registry: every symbol a stage produces is registered; policy overrides scores."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from filters.facts import NO_FACTS
from filters.pipeline import evaluate
from filters.policy import PolicyError, parse_policy
from filters.rules import RULES
from filters.runtime import Policy
from filters.symbols import SYMBOLS
from filters.verdict import Stage
from tests.mailfactory import make_mail

FILTERS = Path(__file__).resolve().parents[2] / "filters"


def test_every_symbol_literal_in_the_stages_is_registered() -> None:
    quoted = re.compile(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"')
    found = {m for path in FILTERS.glob("*.py") for m in quoted.findall(path.read_text())}
    found |= {rule.symbol for rule in RULES}
    assert {"VIRUS_FOUND", "FILTER_TIME_BUDGET", "CONTENT_RULE_TIMEOUT"} <= found <= set(SYMBOLS)


def test_names_match_the_table_and_stages_are_stages() -> None:
    assert all(name == s.name and isinstance(s.stage, Stage) for name, s in SYMBOLS.items())


def test_unknown_symbol_in_scores_is_refused_naming_the_key() -> None:
    with pytest.raises(PolicyError, match=r"scores: .*unknown symbol\(s\) NO_SUCH_SYMBOL"):
        parse_policy({"scores": {"NO_SUCH_SYMBOL": 1.0}})


def _policy(data: dict[str, object]) -> Policy:
    from filters.antivirus import VirusDatabase
    from filters.signatures import SignatureDatabase

    return Policy(parse_policy(data), VirusDatabase.builtin(), SignatureDatabase.empty(), None)


def test_policy_score_overrides_a_hard_coded_default() -> None:
    data: dict[str, object] = {"blacklist": ["alice@partner.example"]}
    assert evaluate(make_mail(), NO_FACTS, _policy(data)).score == 10.0
    data["scores"] = {"BLACKLIST_PRIVATE": 7.0}
    assert evaluate(make_mail(), NO_FACTS, _policy(data)).score == 7.0


def test_skipped_stages_are_recorded() -> None:
    trusted = evaluate(make_mail(), NO_FACTS, _policy({"whitelist": ["partner.example"]}))
    assert trusted.skipped == (Stage.BLACKLIST, Stage.SIGNATURES, Stage.HEURISTICS)
    blocked = evaluate(make_mail(), NO_FACTS, _policy({"blacklist": ["partner.example"]}))
    assert blocked.skipped == (Stage.SIGNATURES, Stage.HEURISTICS)
    assert blocked.explain().endswith("(not run: signatures, heuristics)")
    plain = evaluate(make_mail(), NO_FACTS, _policy({}))
    assert plain.skipped == () and "not run" not in plain.explain()
