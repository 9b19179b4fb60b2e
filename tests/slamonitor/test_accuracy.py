"""False positives and negatives: ground truth from claims and labels, exclusions, confidence."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from slamonitor.accuracy import needed, record_fn_report, record_fp_claim
from slamonitor.claims import ClaimConflict, ClaimNotFound, set_state
from slamonitor.config import SlaSettings
from slamonitor.periods import Month
from slamonitor.report import build
from slamonitor.stats import binomial_cdf, upper_bound
from store.sla_tables import labels, windows
from store.store import Store
from tests.slamonitor.conftest import NOV, event, insert

MONTH = Month(2026, 11)


@pytest.fixture
def store(store_location: Path | str) -> Iterator[Store]:
    """These figures come from the packing query, spelled per engine: run on both."""
    opened = Store(store_location)
    yield opened
    opened.close()


def accuracy(engine: Engine, level: str) -> dict[str, object]:
    levels = build(engine, MONTH, SlaSettings(), now=MONTH.end).data["levels"]
    assert isinstance(levels, dict)
    result = levels[level]
    assert isinstance(result, dict)
    return result


def held(message_id: str, at: float, **kwargs: object) -> dict[str, object]:
    return event(message_id, at, None, outcome="quarantined", category="spam", **kwargs)  # type: ignore[arg-type]


def test_false_positive_exclusions(engine: Engine) -> None:
    rows = [event(f"ok{i}", NOV + i) for i in range(95)]
    rows += [
        held("fp", NOV + 100),
        held("many", NOV + 101, recipients=15),
        held(
            "bl",
            NOV + 102,
            hits=[
                {
                    "symbol": "BLACKLIST_PRIVATE",
                    "reason": "sender a@b on the domain example.test blacklist (b)",
                }
            ],
        ),
        held("dnsbl", NOV + 103, hits=[{"symbol": "BLACKLIST_DNSBL", "reason": "client listed"}]),
        held(
            "global",
            NOV + 104,
            hits=[
                {"symbol": "BLACKLIST_PRIVATE", "reason": "sender a@b on the global blacklist (b)"}
            ],
        ),
    ]
    # "many" also went to 6 recipients of another domain: 21 in all, more than 20.
    rows.append(held("many", NOV + 101, domain="other.test", recipients=6))
    insert(engine, rows)
    with engine.begin() as conn:
        for message in ("fp", "many", "bl", "dnsbl", "global"):
            record_fp_claim(conn, message, "example.test", "customer", NOV + 200)
    fp = accuracy(engine, "false_positives")
    assert fp["errors"] == 2  # "fp" and "global" (the operator's list is not the customer's)
    assert fp["traffic"] == 101
    assert fp["measured"] == pytest.approx(2 / 101)
    reasons = {e["message_id"]: e["reason"] for e in fp["excluded"]}  # type: ignore[attr-defined]
    assert set(reasons) == {"many", "bl", "dnsbl"}
    assert "21 recipients" in reasons["many"]


def test_claims_lifecycle_counts_only_open_and_confirmed(engine: Engine) -> None:
    insert(
        engine, [held("a", NOV + 1), held("b", NOV + 2), held("c", NOV + 3), event("d", NOV + 4)]
    )
    with engine.begin() as conn:
        a = record_fp_claim(conn, "a", "example.test", "release", NOV + 10)
        b = record_fp_claim(conn, "b", "example.test", "release", NOV + 10)
        c = record_fp_claim(conn, "c", "example.test", "release", NOV + 10)
        assert record_fp_claim(conn, "a", "example.test", "release", NOV + 11) == a
        set_state(conn, a, "confirmed", "ops", NOV + 20)
        set_state(conn, b, "rejected", "ops", NOV + 20, "newsletter, not business mail")
        set_state(conn, c, "withdrawn", "customer", NOV + 20)
        with pytest.raises(ClaimConflict):
            record_fp_claim(conn, "d", "example.test", "x", NOV)  # delivered: not blocked
        with pytest.raises(ClaimNotFound):
            record_fp_claim(conn, "zzz", "example.test", "x", NOV)
    assert accuracy(engine, "false_positives")["errors"] == 1


def test_false_negatives_from_reports_and_labels(engine: Engine) -> None:
    rows = [event(f"m{i}", NOV + i) for i in range(18)]
    rows.append(event("virus", NOV + 50, None, category="virus", outcome="quarantined"))
    rows.append(event("tagged", NOV + 60, category="spam"))  # detected and tagged: not an FN
    rows.append(held("labelled-ham-held", NOV + 70))
    insert(engine, rows)
    with engine.begin() as conn:
        record_fn_report(conn, "m1", "example.test", "customer", NOV + 100)
        conn.execute(
            labels.insert(),
            [
                {"message_id": "m2", "label": "spam"},
                {"message_id": "tagged", "label": "spam"},
                {"message_id": "labelled-ham-held", "label": "ham"},
            ],
        )
        with pytest.raises(ClaimConflict):
            record_fn_report(conn, "labelled-ham-held", "example.test", "c", NOV)
    fn = accuracy(engine, "false_negatives")
    assert (fn["errors"], fn["traffic"]) == (2, 20)  # 21 events, one virus not through anti-spam
    assert fn["measured"] == pytest.approx(0.1) and fn["met"] is False
    assert accuracy(engine, "false_positives")["errors"] == 1  # the labelled ham held


def test_claim_inside_a_suspension_is_not_counted(engine: Engine) -> None:
    insert(engine, [held("s", NOV + 500)])
    with engine.begin() as conn:
        conn.execute(
            windows.insert().values(
                kind="suspension",
                domain="example.test",
                start_at=NOV,
                end_at=NOV + 1000,
                reason="unpaid",
                created_by="ops",
                created_at=NOV,
            )
        )
        record_fp_claim(conn, "s", "example.test", "c", NOV + 600)
    fp = accuracy(engine, "false_positives")
    assert fp["errors"] == 0 and fp["traffic"] == 0
    assert fp["excluded"][0]["reason"].startswith("suspension")  # type: ignore[index]


def test_zero_false_positive_confidence() -> None:
    # Rule of three: with none seen in n, the 95% upper bound is about 3 / n.
    n = needed(0.000004)
    assert n == math.ceil(math.log(0.05) / math.log(1 - 0.000004)) == 748_932
    assert upper_bound(0, n) <= 0.000004 < upper_bound(0, n - 1)
    assert upper_bound(0, 1_000_000) == pytest.approx(3 / 1_000_000, rel=0.01)


@pytest.mark.parametrize(
    ("errors", "trials", "expected"),
    [(1, 100, 0.0465598), (3, 1000, 0.0077352), (10, 10, 1.0)],  # Clopper-Pearson tables
)
def test_upper_bound_matches_clopper_pearson(errors: int, trials: int, expected: float) -> None:
    bound = upper_bound(errors, trials)
    assert bound == pytest.approx(expected, rel=1e-5)
    if errors < trials:
        assert binomial_cdf(errors, trials, bound) == pytest.approx(0.05, rel=1e-6)


def test_binomial_cdf_small_case() -> None:
    # P(X <= 1) for n=10, p=0.1: 0.9^10 + 10 * 0.1 * 0.9^9.
    assert binomial_cdf(1, 10, 0.1) == pytest.approx(0.9**10 + 0.9**9, rel=1e-12)
