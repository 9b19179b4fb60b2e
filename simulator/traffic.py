"""Arrivals for a month: per domain and 5-minute cell, shaped by hour and weekday, with events.

Volumes become expected counts per (domain, cell); a fixed total is spread
over the cells by one multinomial draw, so ``--messages N`` gives exactly N
(plus bulk campaigns). Denial-of-service windows multiply the rate; senders
facing a closed port 25 come back after it opens, spread over their retry
time. Labels follow the mix, with outbreaks raising the virus share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from simulator.mix import HAM, SPAM, VIRUS, Mix
from simulator.queueing import TICK
from simulator.scenario import (
    Campaign,
    Dos,
    GatewayOutage,
    Maintenance,
    Outbreak,
    Scenario,
    seconds,
)

CELL = 300.0


@dataclass(frozen=True, slots=True)
class Arrivals:
    """One row per message, sorted by the time the sender first tries."""

    at: NDArray[np.float64]
    domain: NDArray[np.int16]
    message: NDArray[np.int32]
    recipients: NDArray[np.int16]

    def __len__(self) -> int:
        return len(self.at)


def _overlap(starts: NDArray[np.float64], lo: float, hi: float) -> NDArray[np.float64]:
    """Share of each cell [s, s + CELL) inside [lo, hi)."""
    inside = np.minimum(starts + CELL, hi) - np.maximum(starts, lo)
    share: NDArray[np.float64] = np.clip(inside, 0.0, CELL) / CELL
    return share


def _weights(s: Scenario, starts: NDArray[np.float64]) -> NDArray[np.float64]:
    zone = ZoneInfo(s.timezone)
    hours = s.traffic.hour_profile
    days = s.traffic.weekday_profile
    w: NDArray[np.float64] = np.array(
        [
            hours[(local := datetime.fromtimestamp(t, zone)).hour] * days[local.weekday()]
            for t in starts.tolist()
        ]
    )
    w = w / w.mean()
    for e in s.events:
        if isinstance(e, Dos):
            lo = s.local(e.start)
            w *= 1.0 + (e.factor - 1.0) * _overlap(starts, lo, lo + e.seconds)
    return w


def _labels(s: Scenario, at: NDArray[np.float64], rng: np.random.Generator) -> NDArray[np.int8]:
    virus_p = np.full(len(at), s.traffic.virus_share)
    for e in s.events:
        if isinstance(e, Outbreak):
            lo = s.local(e.start)
            virus_p[(at >= lo) & (at < lo + e.seconds)] = e.virus_ratio
    draw = rng.random(len(at))
    spam_p = (1.0 - virus_p) * s.traffic.spam_share
    labels = np.full(len(at), HAM, dtype=np.int8)
    labels[draw < virus_p + spam_p] = SPAM
    labels[draw < virus_p] = VIRUS
    return labels


def _pick(mix: Mix, labels: NDArray[np.int8], rng: np.random.Generator) -> NDArray[np.int32]:
    picked = np.empty(len(labels), dtype=np.int32)
    for label in (HAM, SPAM, VIRUS):
        where = np.flatnonzero(labels == label)
        pool = mix.of(label)
        picked[where] = pool[rng.integers(0, len(pool), len(where))]
    return picked


def _closed(s: Scenario) -> list[tuple[float, float]]:
    """When port 25 takes no mail: gateway outages and maintenance that closes it."""
    spans = [
        (s.local(e.start), s.local(e.start) + e.seconds)
        for e in s.events
        if isinstance(e, GatewayOutage) or (isinstance(e, Maintenance) and e.port_closed)
    ]
    return sorted(spans)


def arrivals(s: Scenario, mix: Mix, rng: np.random.Generator) -> Arrivals:
    """Every message of the month: when its sender first tries, to which domain, which message."""
    start, end = s.bounds
    starts = np.arange(start, end, CELL)
    shape = _weights(s, starts)
    per_cell = np.array([d.per_day for d in s.domains])[:, None] * (CELL / 86400.0) * shape
    expected = float(per_cell.sum())
    total = s.messages if s.messages is not None else int(rng.poisson(expected))
    counts = rng.multinomial(total, (per_cell / expected).ravel()).reshape(per_cell.shape)
    domain = np.repeat(np.repeat(np.arange(len(s.domains)), len(starts)), counts.ravel())
    cell_start = np.repeat(np.tile(starts, len(s.domains)), counts.ravel())
    at = cell_start + rng.random(total) * CELL
    recipients = np.ones(total, dtype=np.int16)
    labels = _labels(s, at, rng)
    names = [d.name for d in s.domains]
    for e in s.events:
        if isinstance(e, Campaign):
            lo = s.local(e.start)
            at = np.concatenate((at, lo + rng.random(e.messages) * e.seconds))
            domain = np.concatenate((domain, np.full(e.messages, names.index(e.domain))))
            recipients = np.concatenate((recipients, np.full(e.messages, e.recipients, np.int16)))
            labels = np.concatenate((labels, np.full(e.messages, SPAM, dtype=np.int8)))
    retry = seconds(s.traffic.sender_retry)
    for lo, hi in _closed(s):
        shut = (at >= lo) & (at < hi)
        at[shut] = hi + rng.random(int(shut.sum())) * retry
    at = np.ceil(at / TICK) * TICK
    order = np.argsort(at, kind="stable")
    return Arrivals(
        at=at[order],
        domain=domain[order].astype(np.int16),
        message=_pick(mix, labels[order], rng),
        recipients=recipients[order],
    )
