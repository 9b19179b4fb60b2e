"""Policy files: valid ones load, and every bad value names its file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from filters.policy import PolicyError, load_policy, parse_policy
from filters.verdict import Action

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_policy_loads_and_resolves_paths() -> None:
    config = load_policy(EXAMPLES / "policy.toml")
    domain = config.domain_policy("EXAMPLE.test")
    assert domain.actions.signatures is Action.QUARANTINE
    assert domain.heuristics.top_action is Action.QUARANTINE
    assert config.antivirus.signature_files[0] == EXAMPLES / "signatures/mailmoat.hdb"
    assert config.domain_policy("unknown.example") is config.default


def test_yaml_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("blacklist: [Spam.Example]\ndomains:\n  a.test:\n    subject_tag: '[junk]'\n")
    config = load_policy(path)
    assert config.blacklist == ["spam.example"]
    assert config.domain_policy("a.test").subject_tag == "[junk]"


@pytest.mark.parametrize(
    ("doc", "key", "message"),
    [
        (
            {"domains": {"a.test": {"actions": {"signatures": "bounce"}}}},
            "domains.a.test.actions.signatures",
            "unknown action 'bounce'",
        ),
        ({"whitelist": ["not an address"]}, "whitelist", "'not an address' is neither"),
        ({"dns": {"timeout": -1}}, "dns.timeout", "greater than 0"),
        ({"dnsbl": [{"zone": "bl.test", "kind": "asn"}]}, "dnsbl.0.kind", "'ip' or 'domain'"),
        (
            {"domains": {"a.test": {"content_rules": [{"name": "x"}]}}},
            "domains.a.test.content_rules.0",
            "at least one condition",
        ),
        (
            {
                "domains": {
                    "a.test": {
                        "content_rules": [{"name": "x", "header": "Subject", "pattern": "("}]
                    }
                }
            },
            "domains.a.test.content_rules.0",
            "bad regex",
        ),
        (
            {
                "domains": {
                    "a.test": {"content_rules": [{"name": "x", "words": ["a"], "action": "copy"}]}
                }
            },
            "domains.a.test",
            "neither the rule nor the domain sets `admin`",
        ),
        ({"domainz": {}}, "domainz", "Extra inputs are not permitted"),
        (
            {"domains": {"a.test": {"redirect_to": "review@elsewhere.example"}}},
            "domains.a.test.redirect_to",
            "'review@elsewhere.example' is not an address in a scanned domain (scanned: a.test)",
        ),
        (
            {"default": {"redirect_to": "review@a.test.evil.example"}, "domains": {"a.test": {}}},
            "default.redirect_to",
            "not an address in a scanned domain",
        ),
        (
            {"domains": {"a.test": {"redirect_to": "a.test"}}},
            "domains.a.test.redirect_to",
            "'a.test' is not an address in a scanned domain",
        ),
    ],
)
def test_bad_values_name_file_and_key(doc: dict[str, object], key: str, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(doc, "site.toml")
    assert f"site.toml: {key}:" in str(err.value)
    assert message in str(err.value)


def test_redirect_to_an_address_in_another_scanned_domain_is_accepted() -> None:
    config = parse_policy({"domains": {"a.test": {"redirect_to": "Review@B.test"}, "b.test": {}}})
    assert config.domain_policy("a.test").redirect_to == "Review@B.test"


def test_unreadable_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"missing\.toml: cannot read"):
        load_policy(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("blacklist = [\n")
    with pytest.raises(PolicyError, match=r"bad\.toml: not valid TOML"):
        load_policy(bad)


def test_heuristic_thresholds_pick_the_most_severe_reached() -> None:
    config = parse_policy(
        {"default": {"heuristics": {"thresholds": {"tag_header": 3, "delete": 8}}}}
    )
    heur = config.default.heuristics
    assert heur.action_for(2.9) is Action.DELIVER
    assert heur.action_for(3.0) is Action.TAG_HEADER
    assert heur.action_for(9.0) is Action.DELETE


def test_absolute_paths_in_a_policy_stay_absolute(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(f'model = "{tmp_path / "m.npz"}"\n[signatures]\nfile = "s.sigs"\n')
    config = load_policy(path)
    assert config.model == tmp_path / "m.npz"
    assert config.signatures.file == tmp_path / "s.sigs"
