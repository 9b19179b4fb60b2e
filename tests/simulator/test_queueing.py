"""The queueing model against theory: Erlang C for M/M/c, Lindley for one server, the backoff."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.queueing import (
    REFUSED_SECONDS,
    TICK,
    Downtime,
    Retry,
    deliver,
    servers,
    single_server,
)
from store import backoff


def erlang_c(c: int, load: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load ``load`` = lambda/mu."""
    top = load**c / math.factorial(c) * c / (c - load)
    return top / (sum(load**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize(("c", "rho"), [(1, 0.7), (3, 0.8), (8, 0.9)])
def test_mmc_mean_wait_and_queue_match_erlang_c(c: int, rho: float) -> None:
    """Poisson arrivals, exponential service (the PDQ spam-scanning farm): simulated mean wait
    and mean queue length fall inside the 99% batch-means interval around Erlang C."""
    mu, n, batches = 1.0, 400_000, 40
    lam = rho * c * mu
    rng = np.random.default_rng(c)
    arrivals = np.cumsum(rng.exponential(1 / lam, n))
    service = rng.exponential(1 / mu, n)
    wait = servers(arrivals, service, c) - service - arrivals
    wait = wait[n // 10 :]  # warm-up: the queue starts empty
    means = wait[: len(wait) // batches * batches].reshape(batches, -1).mean(axis=1)
    half = 2.58 * means.std(ddof=1) / math.sqrt(batches)
    theory_wait = erlang_c(c, lam / mu) / (c * mu - lam)
    assert abs(means.mean() - theory_wait) < half
    queue = wait.sum() / (arrivals[-1] - arrivals[n // 10])  # time-average number waiting
    assert abs(queue - lam * theory_wait) < lam * half * 1.2
    waited = np.count_nonzero(wait > 0) / len(wait)
    assert abs(waited - erlang_c(c, lam / mu)) < 0.02


def test_one_server_closed_form_equals_lindleys_recursion() -> None:
    rng = np.random.default_rng(5)
    arrivals = np.cumsum(rng.exponential(1.0, 5000))
    service = rng.exponential(0.9, 5000)
    expected, done = [], 0.0
    for a, s in zip(arrivals, service, strict=True):
        done = max(a, done) + s
        expected.append(done)
    assert np.allclose(single_server(arrivals, service), expected, rtol=0, atol=1e-9)


def test_delivery_retries_on_the_gateways_backoff_and_expires() -> None:
    retry = Retry(base=60.0, cap=3600.0, max_age=7 * 86400.0)
    ready = np.array([100.0])
    cost = np.array([8 * TICK])
    done, gone, attempts = deliver(ready, cost, 1, [Downtime(0.0, 1000.0, True)], retry)
    # Refused at 100, then waits 60, 120, 240, 480 s after each failure: up after 1000 s.
    t, n = 100.0, 0
    while t < 1000.0:
        n += 1
        t = t + REFUSED_SECONDS + backoff.next_delay(n, base=60.0, cap=3600.0)
    assert done[0] == t + 8 * TICK
    assert math.isnan(gone[0])
    assert attempts[0] == n + 1
    done, gone, _ = deliver(ready, cost, 1, [Downtime(0.0, 30 * 86400.0, False)], retry)
    assert math.isnan(done[0])
    assert gone[0] - 100.0 >= retry.max_age
