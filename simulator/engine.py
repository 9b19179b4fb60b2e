"""One month through the gateway's stages on the virtual clock: every message's times and fate.

accept (one server at the accept rate) -> filter (``filter_processes``
workers, the measured or configured time per message, plus block-list
timeouts) -> verdict (memoized real pipeline; a full quarantine tags and
delivers) -> delivery (per domain, ``delivery_concurrency`` connections,
outages retried on the gateway's backoff until its 7-day expiry).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulator.mix import DELIVERED, EXPIRED, REDIRECTED, Mix
from simulator.queueing import Downtime, Retry, deliver, quantize, servers, single_server
from simulator.scenario import (
    ConfigFault,
    DnsblTimeout,
    DownstreamOutage,
    QuarantineFull,
    Scenario,
)
from simulator.traffic import Arrivals, arrivals

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Run:
    """The simulated month: per message (sorted by receipt) times, action and outcome."""

    scenario: Scenario
    mix: Mix
    start: float
    end: float
    arrivals: Arrivals
    received: NDArray[np.float64]
    filtered: NDArray[np.float64]
    delivered: NDArray[np.float64]
    finished: NDArray[np.float64]
    action: NDArray[np.int8]
    outcome: NDArray[np.int8]
    quarantine_full: NDArray[np.bool_]
    filter_seconds: float

    def __len__(self) -> int:
        return len(self.received)

    @property
    def domains(self) -> list[str]:
        return [d.name for d in self.scenario.domains]


def _within(s: Scenario, kind: type, times: NDArray[np.float64]) -> NDArray[np.bool_]:
    found = np.zeros(len(times), dtype=np.bool_)
    for e in s.events:
        if isinstance(e, kind):
            lo = s.local(e.start)
            found |= (times >= lo) & (times < lo + e.seconds)
    return found


def _filter_time(
    s: Scenario, mean: float, received: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.float64]:
    service = rng.exponential(mean, len(received))
    for e in s.events:
        if isinstance(e, DnsblTimeout):
            lo = s.local(e.start)
            service[(received >= lo) & (received < lo + e.seconds)] += e.timeout
    return quantize(service)


def simulate(s: Scenario, mix: Mix, progress: Progress = lambda _: None) -> Run:
    """Run the month; the scenario's seed makes it repeatable to the bit."""
    rng = np.random.default_rng(s.seed)
    start, end = s.bounds
    progress("arrivals")
    sent = arrivals(s, mix, rng)
    n = len(sent)
    progress("accept")
    received = single_server(
        sent.at, np.full(n, quantize(np.array([1.0 / s.capacity.accept_rate]))[0])
    )
    progress("filter")
    mean = s.capacity.filter_seconds or mix.filter_seconds
    filtered = servers(received, _filter_time(s, mean, received, rng), s.capacity.filter_processes)
    full = _within(s, QuarantineFull, filtered)
    action = np.where(full, mix.full_action[sent.message], mix.action[sent.message]).astype(np.int8)
    outcome = np.where(full, mix.full_outcome[sent.message], mix.outcome[sent.message]).astype(
        np.int8
    )
    delivered = np.full(n, np.nan)
    finished = filtered.copy()
    cap = s.capacity
    retry = Retry(cap.retry_base, cap.retry_cap, cap.max_age)
    goes = (outcome == DELIVERED) | (outcome == REDIRECTED)
    for d, domain in enumerate(s.domains):
        progress(f"deliver {domain.name}")
        idx = np.flatnonzero(goes & (sent.domain == d))
        idx = idx[np.argsort(filtered[idx], kind="stable")]
        down = sorted(
            (
                Downtime(
                    s.local(e.start),
                    s.local(e.start) + e.seconds,
                    isinstance(e, DownstreamOutage) and e.mode == "refused",
                )
                for e in s.events
                if isinstance(e, DownstreamOutage | ConfigFault) and e.domain == domain.name
            ),
            key=lambda w: w.start,
        )
        attempt = quantize(
            rng.exponential(domain.delivery_seconds or cap.delivery_seconds, len(idx))
        )
        done, gone, _ = deliver(filtered[idx], attempt, cap.delivery_concurrency, down, retry)
        delivered[idx] = done
        finished[idx] = np.where(np.isnan(done), gone, done)
        outcome[idx[~np.isnan(gone)]] = EXPIRED
    return Run(
        scenario=s,
        mix=mix,
        start=start,
        end=end,
        arrivals=sent,
        received=received,
        filtered=filtered,
        delivered=delivered,
        finished=finished,
        action=action,
        outcome=outcome,
        quarantine_full=full,
        filter_seconds=mean,
    )
