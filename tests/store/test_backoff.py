"""The retry schedule: doubling, the cap, jitter with injected randomness, and the 7-day expiry."""

from __future__ import annotations

import pytest

from store.backoff import BASE, CAP, MAX_AGE, expired, next_delay


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [(1, 60.0), (2, 120.0), (3, 240.0), (6, 1920.0), (7, 3600.0), (50, 3600.0), (5000, 3600.0)],
)
def test_delay_doubles_up_to_the_cap(attempts: int, delay: float) -> None:
    assert next_delay(attempts, base=BASE, cap=CAP) == delay


def test_schedule_reaches_the_cap_and_stays() -> None:
    delays = [next_delay(n, base=BASE, cap=CAP) for n in range(1, 12)]
    assert delays == sorted(delays)
    assert delays[-1] == CAP
    assert max(delays) == CAP


@pytest.mark.parametrize(("drawn", "delay"), [(0.0, 240.0), (0.5, 180.0), (0.999, 120.12)])
def test_jitter_only_shortens_by_at_most_its_fraction(drawn: float, delay: float) -> None:
    got = next_delay(3, base=BASE, cap=CAP, jitter=0.5, rand=lambda: drawn)
    assert got == pytest.approx(delay)


def test_jitter_keeps_the_cap_an_upper_bound() -> None:
    assert next_delay(40, base=BASE, cap=CAP, jitter=0.25, rand=lambda: 0.0) == CAP
    assert next_delay(40, base=BASE, cap=CAP, jitter=0.25, rand=lambda: 0.5) == CAP * 0.875


def test_no_jitter_never_asks_for_randomness() -> None:
    def forbidden() -> float:
        raise AssertionError("rand called without jitter")

    assert next_delay(1, base=BASE, cap=CAP, rand=forbidden) == BASE


@pytest.mark.parametrize(
    ("attempts", "base", "cap", "jitter"),
    [(0, 60.0, 3600.0, 0.0), (1, 0.0, 3600.0, 0.0), (1, 120.0, 60.0, 0.0), (1, 60.0, 3600.0, 1.5)],
)
def test_nonsense_arguments_are_errors(
    attempts: int, base: float, cap: float, jitter: float
) -> None:
    with pytest.raises(ValueError):
        next_delay(attempts, base=base, cap=cap, jitter=jitter)


def test_defaults_follow_the_spec() -> None:
    assert (BASE, CAP, MAX_AGE) == (60.0, 3600.0, 7 * 86400.0)


@pytest.mark.parametrize(
    ("age", "is_expired"),
    [(0.0, False), (MAX_AGE - 1, False), (MAX_AGE, True), (MAX_AGE + 3600, True)],
)
def test_expiry_after_seven_days(age: float, is_expired: bool) -> None:
    first = 1_700_000_000.0
    assert expired(first, first + age, MAX_AGE) is is_expired
