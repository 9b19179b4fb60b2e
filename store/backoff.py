"""The retry schedule for undeliverable mail; pure, so the queue can run on virtual time."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

BASE = 60.0
"""Seconds to wait after the first failed attempt (config: ``delivery.retry_base``)."""

CAP = 3600.0
"""Longest wait between attempts, seconds (config: ``delivery.retry_cap``)."""

MAX_AGE = 7 * 24 * 3600.0
"""SPEC 2.7: keep trying and storing a message for 7 days, then delete it."""


def next_delay(
    attempts: int,
    *,
    base: float,
    cap: float,
    jitter: float = 0.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before the next attempt, after ``attempts`` failed ones (1, 2, ...).

    The delay doubles with every failure, ``base * 2**(attempts - 1)``, up to
    ``cap``. ``jitter`` (0..1) removes up to that fraction of the delay, drawn
    from ``rand()`` in [0, 1): when a customer's server comes back, the mail
    queued for it does not all return in the same second. Jitter only ever
    shortens the delay, so ``cap`` stays a true upper bound.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    if not 0 < base <= cap:
        raise ValueError(f"need 0 < base <= cap, got base={base} cap={cap}")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter must be between 0 and 1, not {jitter}")
    # Compare exponents rather than computing 2**n: after ~1000 attempts the
    # power overflows a float, and a queue must never crash on an old message.
    delay = cap if attempts - 1 >= math.log2(cap / base) else base * 2.0 ** (attempts - 1)
    return delay * (1.0 - jitter * rand()) if jitter else delay


def expired(first_attempt_at: float, now: float, max_age: float) -> bool:
    """True once a message has been retried for ``max_age`` seconds: bounce it and delete it.

    Times are seconds on one clock (the caller's injected clock), so the
    7-day rule can be tested and replayed on virtual time.
    """
    return now - first_attempt_at >= max_age
