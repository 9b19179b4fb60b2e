"""Latency and exclusions on synthetic event streams whose answers are known exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from slamonitor.config import SlaSettings
from slamonitor.periods import Month
from slamonitor.report import build
from store.sla_tables import services, windows
from store.store import Store
from tests.slamonitor.conftest import NOV, event, insert

MONTH = Month(2026, 11)
SETTINGS = SlaSettings()


@pytest.fixture
def store(store_location: Path | str) -> Iterator[Store]:
    """These figures come from the packing query, spelled per engine: run on both."""
    opened = Store(store_location)
    yield opened
    opened.close()


def levels(engine: Engine, month: Month = MONTH, domain: str | None = None) -> dict[str, object]:
    data = build(engine, month, SETTINGS, now=month.end + 1, domain=domain).data
    result = data["levels"]
    assert isinstance(result, dict)
    return result | {"_data": data}


def test_share_quantiles_and_five_minute_averages(engine: Engine) -> None:
    # Period 0: 19 messages of 10 s and one of 600 s (average 39.5 s, within 2 min).
    # Period 1: 10 messages of 130 s (average 130 s, above). Within 120 s: 19 of 30.
    # Nearest rank of 30 sorted values: p50 the 15th (10), p95 the 29th (130), p99 the 30th.
    rows = [event(f"a{i}", NOV + i, 10.0) for i in range(19)]
    rows.append(event("a-slow", NOV + 100, 600.0))
    rows += [event(f"b{i}", NOV + 300 + i, 130.0) for i in range(10)]
    rows.append(event("held", NOV + 400, None, outcome="quarantined"))
    insert(engine, rows)
    latency = levels(engine)["latency"]
    assert isinstance(latency, dict)
    assert latency["delivered"] == 30
    assert latency["within_limit"] == 19
    assert latency["measured"] == pytest.approx(19 / 30)
    assert latency["met"] is False
    assert latency["undelivered"] == 1
    assert latency["quantiles_seconds"] == {"p50": 10.0, "p95": 130.0, "p99": 600.0}
    assert latency["max_seconds"] == 600.0
    assert (latency["periods"], latency["periods_within_limit"]) == (2, 1)


def test_exactly_two_minutes_is_within(engine: Engine) -> None:
    insert(engine, [event("edge", NOV + 5, 120.0), event("over", NOV + 6, 120.001)])
    latency = levels(engine)["latency"]
    assert isinstance(latency, dict)
    assert latency["within_limit"] == 1


def test_outbreak_periods_are_excluded_from_latency_only(engine: Engine) -> None:
    # Period 0: 2 viruses in 200 messages (1:100, an outbreak), all slow.
    # Period 1: 1 virus in 200 (exactly 1:200, not above: no outbreak), all fast.
    rows = [event(f"o{i}", NOV + i, 500.0) for i in range(198)]
    rows += [
        event(f"ov{i}", NOV + 250 + i, None, category="virus", outcome="quarantined")
        for i in range(2)
    ]
    rows += [event(f"n{i}", NOV + 300 + i, 1.0) for i in range(199)]
    rows.append(event("nv", NOV + 550, None, category="virus", outcome="quarantined"))
    insert(engine, rows)
    result = levels(engine)
    latency = result["latency"]
    assert isinstance(latency, dict)
    assert latency["delivered"] == 199 and latency["measured"] == 1.0
    data = result["_data"]
    assert isinstance(data, dict)
    [outbreak] = data["exclusions"]
    assert outbreak["kind"] == "outbreak" and outbreak["events"] == 200
    assert outbreak["levels"] == "latency"
    assert data["events"]["excluded"] == 0  # every other level still counts them
    assert data["events"]["excluded_from_latency"] == 200


def test_maintenance_window_and_first_thirty_days(engine: Engine) -> None:
    new_start = NOV - 20 * 86400  # new.test's 30 days end on 11-10
    with engine.begin() as conn:
        conn.execute(services.insert().values(domain="new.test", started_at=new_start))
        conn.execute(
            windows.insert().values(
                kind="maintenance",
                domain=None,
                start_at=NOV + 86400,
                end_at=NOV + 86400 + 3600,
                reason="upgrade",
                created_by="ops",
                created_at=NOV,
            )
        )
    rows = [event("maint", NOV + 86400 + 60, 900.0)]  # slow, but in maintenance
    rows += [event("grace", NOV + 5 * 86400, 900.0, domain="new.test")]  # slow, in grace
    rows += [event("after", NOV + 11 * 86400, 5.0, domain="new.test")]  # measured
    rows += [event("other", NOV + 5 * 86400, 5.0, domain="old.test")]  # measured
    insert(engine, rows)
    result = levels(engine)
    latency = result["latency"]
    assert isinstance(latency, dict)
    assert (latency["delivered"], latency["within_limit"]) == (2, 2)
    data = result["_data"]
    assert isinstance(data, dict)
    kinds = {w["kind"]: w["events"] for w in data["exclusions"]}
    assert kinds == {"maintenance": 1, "first_30_days": 1}
    assert data["events"] == {
        "received": 4,
        "measured": 2,
        "excluded": 2,
        "excluded_from_latency": 2,
    }
    only_new = levels(engine, domain="new.test")["latency"]
    assert isinstance(only_new, dict)
    assert (only_new["delivered"], only_new["within_limit"]) == (1, 1)


def test_month_boundaries_in_a_time_zone(engine: Engine) -> None:
    # 2026-11-01T00:00 in Sydney (AEDT, UTC+11) is 2026-10-31T13:00Z.
    sydney = Month(2026, 11, "Australia/Sydney")
    assert sydney.start == NOV - 11 * 3600
    rows = [
        event("before", sydney.start - 0.5, 1.0),
        event("first", sydney.start, 1.0),
        event("utc-october", NOV - 60, 1.0),  # October in UTC, November in Sydney
        event("last", sydney.end - 0.5, 1.0),
        event("after", sydney.end, 1.0),
    ]
    insert(engine, rows)
    in_sydney = levels(engine, sydney)["latency"]
    in_utc = levels(engine, MONTH)["latency"]
    assert isinstance(in_sydney, dict) and isinstance(in_utc, dict)
    assert in_sydney["delivered"] == 3
    assert in_utc["delivered"] == 2  # only "last" and "after" (Dec 1 in Sydney) are November UTC
    assert (
        Month.parse("2026-03", "Europe/Berlin").end - Month.parse("2026-03", "Europe/Berlin").start
        == 31 * 86400 - 3600
    )


def test_no_mail_means_not_measured(engine: Engine) -> None:
    latency = levels(engine)["latency"]
    assert isinstance(latency, dict)
    assert latency["measured"] is None and latency["met"] is None


def test_adjacent_outbreak_periods_merge_and_count_per_domain(engine: Engine) -> None:
    # Periods 0 and 1 are outbreaks (1 virus in 10), period 3 too; period 2 is clean.
    rows = []
    for p in (0, 1, 3):
        rows += [event(f"p{p}-{i}", NOV + p * 300 + i, 1.0) for i in range(9)]
        rows.append(
            event(f"v{p}", NOV + p * 300 + 50, None, category="virus", outcome="quarantined")
        )
    rows += [event(f"c{i}", NOV + 600 + i, 1.0, domain="other.test") for i in range(5)]
    insert(engine, rows)
    data = levels(engine, domain="example.test")["_data"]
    assert isinstance(data, dict)
    found = [(w["start"], w["end"], w["events"]) for w in data["exclusions"]]
    assert found == [
        ("2026-11-01T00:00:00Z", "2026-11-01T00:10:00Z", 20),
        ("2026-11-01T00:15:00Z", "2026-11-01T00:20:00Z", 10),
    ]


def test_a_virus_in_little_mail_is_an_outbreak_as_the_contract_words_it(engine: Engine) -> None:
    # 1 virus in 10 messages is above 1:200: excluded here (the Prometheus alert, not the
    # exclusion, has a 200-message floor; see slamonitor/exclusions.py).
    rows = [event(f"h{i}", NOV + i, 1.0) for i in range(9)]
    rows.append(event("v", NOV + 20, None, category="virus", outcome="quarantined"))
    insert(engine, rows)
    data = levels(engine)["_data"]
    assert isinstance(data, dict)
    assert [w["kind"] for w in data["exclusions"]] == ["outbreak"]
