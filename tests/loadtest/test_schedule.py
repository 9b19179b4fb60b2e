"""Arrival schedules: exact constant spacing, seeded Poisson gaps, bounds by count and time."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable

import pytest

from loadtest.schedule import Bounds, arrival_offsets, expected_count


def test_constant_arrivals_are_evenly_spaced_from_zero() -> None:
    offsets = list(arrival_offsets(4.0, "constant", Bounds(count=5), random.Random(0)))
    assert offsets == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_constant_arrivals_do_not_drift_over_a_long_run() -> None:
    offsets = list(arrival_offsets(3.0, "constant", Bounds(count=300_001), random.Random(0)))
    assert offsets[-1] == 100_000.0


def test_poisson_arrivals_repeat_with_the_seed_and_average_the_rate() -> None:
    first = list(arrival_offsets(50.0, "poisson", Bounds(count=20_000), random.Random(9)))
    again = list(arrival_offsets(50.0, "poisson", Bounds(count=20_000), random.Random(9)))
    other = list(arrival_offsets(50.0, "poisson", Bounds(count=20_000), random.Random(10)))
    assert first == again != other
    gaps = [b - a for a, b in zip([0.0, *first], first, strict=False)]
    assert all(g > 0 for g in gaps)
    assert statistics.fmean(gaps) == pytest.approx(1 / 50, rel=0.05)
    # Exponential gaps: the standard deviation equals the mean.
    assert statistics.pstdev(gaps) == pytest.approx(1 / 50, rel=0.05)


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        (Bounds(count=3), 3),
        (Bounds(duration=1.0), 10),  # offsets 0.0 .. 0.9; 1.0 is past the end
        (Bounds(count=4, duration=1.0), 4),
        (Bounds(count=40, duration=1.0), 10),
        (Bounds(count=0), 0),
    ],
)
def test_the_first_bound_reached_ends_the_schedule(bounds: Bounds, expected: int) -> None:
    assert len(list(arrival_offsets(10.0, "constant", bounds, random.Random(0)))) == expected
    assert expected_count(10.0, bounds) == expected


def test_poisson_within_a_duration_stays_inside_it() -> None:
    offsets = list(arrival_offsets(200.0, "poisson", Bounds(duration=2.0), random.Random(1)))
    assert offsets and max(offsets) < 2.0 and 300 < len(offsets) < 500


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Bounds(), "needs a bound"),
        (lambda: Bounds(count=-1), "count"),
        (lambda: Bounds(duration=float("inf")), "duration"),
        (lambda: list(arrival_offsets(0.0, "constant", Bounds(count=1), random.Random())), "rate"),
        (lambda: list(arrival_offsets(1.0, "bursty", Bounds(count=1), random.Random())), "one of"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_is_refused_with_the_field_named(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_expected_count_follows_the_tighter_bound() -> None:
    assert expected_count(7.0, Bounds(duration=2.0)) == 14
    assert expected_count(7.0, Bounds(count=5)) == 5
