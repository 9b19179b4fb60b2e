"""Bad scenario files get one clear error naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.cli import main
from simulator.errors import ScenarioError
from simulator.scenario import load_scenario, seconds

GOOD = """
name = "t"
month = "2026-10"
timezone = "Europe/Amsterdam"
[[domains]]
name = "a.test"
per_day = 100
[[domains]]
name = "b.test"
per_day = 100
"""


def outage(start: str, duration: str, domain: str = "a.test") -> str:
    return (
        f'[[events]]\nkind = "downstream_outage"\ndomain = "{domain}"\n'
        f'start = "{start}"\nduration = "{duration}"\n'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD + "colour = 'red'\n", "colour: unknown key"),
        (GOOD.replace("2026-10", "2026-13"), "month: 2026-13 is not a month"),
        (GOOD.replace("2026-10", "October"), "month: String should match pattern"),
        (GOOD.replace("Europe/Amsterdam", "Mars/Olympus"), "timezone: unknown time zone"),
        (GOOD + "[capacity]\nfilter_processes = 0\n", "capacity.filter_processes"),
        (GOOD + "[traffic]\nspam_share = 2\n", "traffic.spam_share"),
        (
            GOOD + outage("2026-10-03T10:00", "6h") + outage("2026-10-03T12:00", "1h"),
            "events.1 overlaps events.0: one domain's server cannot have two outages at once",
        ),
        (GOOD + outage("2026-11-03T10:00", "6h"), "events.0.start: 2026-11-03 10:00:00 is outside"),
        (GOOD + outage("2026-10-03T10:00", "6h", "c.test"), "events.0.domain: 'c.test' is not"),
        (GOOD + outage("2026-10-03T10:00", "six hours"), "duration must look like"),
        (
            GOOD + '[[events]]\nkind = "meteor"\nstart = "2026-10-03T10:00"\nduration = 1\n',
            "events.0: Input tag 'meteor' found using 'kind' does not match",
        ),
        (
            GOOD + '[[events]]\nkind = "dos"\nstart = "2026-10-03T10:00"\nduration = 60\n',
            "events.0.dos.factor: Field required",
        ),
        ("name = 't'\nmonth = \n", "not TOML"),
    ],
)
def test_bad_scenarios(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


def test_outages_of_two_domains_may_overlap(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(
        GOOD + outage("2026-10-03T10:00", "6h") + outage("2026-10-03T12:00", "1h", "b.test")
    )
    assert len(load_scenario(path).events) == 2


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"nope\.toml: cannot read"):
        load_scenario(tmp_path / "nope.toml")


def test_durations() -> None:
    assert [seconds(v) for v in (90, "90s", "30m", "6h", "2d", "1.5h")] == [
        90.0, 90.0, 1800.0, 21600.0, 172800.0, 5400.0,
    ]  # fmt: skip


def test_a_missing_corpus_is_named_with_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(GOOD + '[traffic]\ncorpus = "no-such-corpus"\n')
    assert main(["simulate", str(path), "--out", str(tmp_path / "out"), "--messages", "100"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{path}: traffic.corpus:" in err and "no-such-corpus" in err
