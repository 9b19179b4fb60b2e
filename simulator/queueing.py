"""Exact first-come-first-served queues on one virtual clock: accept, filter, deliver.

All times are multiples of ``TICK`` (1/1024 s) below 2**31 s, so every sum
and difference is exact in a float and the SLA monitor's rounding of stored
times cannot move a message across the 2-minute line. One server is solved
in closed form (Lindley's recursion as a running maximum, vectorised); ``c``
servers run a heap of the times each server frees up; delivery with outages
is a small discrete-event loop whose retries follow the gateway's own
backoff and expiry functions.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from store import backoff

TICK = 1.0 / 1024.0
REFUSED_SECONDS = 16 * TICK
"""A refused connection fails at once (a few ms); a 4xx costs a whole attempt."""


def quantize(times: NDArray[np.float64]) -> NDArray[np.float64]:
    """Round up to the next tick, at least one tick for a duration."""
    return np.ceil(times / TICK) * TICK


def single_server(
    arrivals: NDArray[np.float64], service: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Departure times of one FCFS server: D_n = max(A_n, D_(n-1)) + S_n, vectorised.

    With C the running sum of service times, D_n = C_n + max over k <= n of (A_k - C_(k-1)).
    """
    total = np.cumsum(service)
    before = np.concatenate(([0.0], total[:-1]))
    return total + np.maximum.accumulate(arrivals - before)


def servers(
    arrivals: NDArray[np.float64], service: NDArray[np.float64], c: int
) -> NDArray[np.float64]:
    """Departure times of ``c`` FCFS servers (arrivals sorted): a job takes the first free one."""
    if c == 1:
        return single_server(arrivals, service)
    free = [0.0] * c
    out = []
    push = heapq.heapreplace
    for a, s in zip(arrivals.tolist(), service.tolist(), strict=True):
        t = free[0]
        end = (a if a > t else t) + s
        push(free, end)
        out.append(end)
    return np.array(out, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Downtime:
    """A domain's server refusing mail (``refused``: at once; else 4xx after a whole attempt)."""

    start: float
    end: float
    refused: bool


@dataclass(frozen=True, slots=True)
class Retry:
    base: float
    cap: float
    max_age: float


def deliver(
    ready: NDArray[np.float64],
    service: NDArray[np.float64],
    c: int,
    down: Sequence[Downtime],
    retry: Retry,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int32]]:
    """Delivery of one domain's queue: (delivered time or NaN, expiry time or NaN, attempts).

    Jobs are served in order of the time they became ready (first try or retry);
    an attempt that starts while the server is down fails, and the job waits
    ``backoff.next_delay`` before it is ready again, until ``backoff.expired``.
    """
    n = len(ready)
    if not down:
        return servers(ready, service, c), np.full(n, np.nan), np.ones(n, dtype=np.int32)
    starts = [d.start for d in down]
    first = ready.tolist()
    cost = service.tolist()
    delivered = [np.nan] * n
    expired = [np.nan] * n
    attempts = [0] * n
    free = [0.0] * c
    retries: list[tuple[float, int]] = []
    nxt = 0
    while nxt < n or retries:
        if retries and (nxt >= n or retries[0][0] < first[nxt]):
            t, i = heapq.heappop(retries)
        else:
            t, i = first[nxt], nxt
            nxt += 1
        slot = free[0]
        start = t if t > slot else slot
        k = bisect.bisect_right(starts, start) - 1
        attempts[i] += 1
        if k < 0 or start >= down[k].end:
            end = start + cost[i]
            heapq.heapreplace(free, end)
            delivered[i] = end
            continue
        end = start + (REFUSED_SECONDS if down[k].refused else cost[i])
        heapq.heapreplace(free, end)
        if backoff.expired(first[i], end, retry.max_age):
            expired[i] = end
            continue
        delay = backoff.next_delay(attempts[i], base=retry.base, cap=retry.cap)
        heapq.heappush(retries, (end + float(np.ceil(delay / TICK)) * TICK, i))
    return (
        np.array(delivered, dtype=np.float64),
        np.array(expired, dtype=np.float64),
        np.array(attempts, dtype=np.int32),
    )
