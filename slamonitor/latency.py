"""Latency (SPEC 4): share of messages delivered within 2 minutes, and 5-minute averages.

Round trip = delivered_at - received_at of each event that was delivered.
Messages not (yet) delivered have no round trip and are counted apart.
Percentiles are nearest-rank (numpy ``inverted_cdf``): every figure is a
round trip some message really had, so synthetic tests know it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from slamonitor.events import EventArrays
from slamonitor.periods import PERIOD

LIMIT = 120.0
TARGET = 0.95
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class Latency:
    """The month's latency figures over the measured (not excluded) events."""

    delivered: int
    within: int
    undelivered: int
    quantiles: dict[str, float | None]
    max: float | None
    periods: int
    periods_within: int
    limit: float = LIMIT
    target: float = TARGET

    @property
    def share(self) -> float | None:
        return self.within / self.delivered if self.delivered else None

    @property
    def periods_share(self) -> float | None:
        return self.periods_within / self.periods if self.periods else None

    @property
    def met(self) -> bool | None:
        share = self.share
        return None if share is None else share >= self.target

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "limit_seconds": self.limit,
            "measured": self.share,
            "met": self.met,
            "delivered": self.delivered,
            "within_limit": self.within,
            "undelivered": self.undelivered,
            "quantiles_seconds": self.quantiles,
            "max_seconds": self.max,
            "periods": self.periods,
            "periods_within_limit": self.periods_within,
            "periods_share": self.periods_share,
        }


def period_averages(
    events: EventArrays, include: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Start (seconds into the month) and average round trip of each 5-minute period with mail."""
    delivered = include & ~np.isnan(events.latency)
    period = (events.at[delivered] // PERIOD).astype(np.int64)
    counts = np.bincount(period)
    sums = np.bincount(period, weights=events.latency[delivered])
    used = np.flatnonzero(counts)
    return (used * PERIOD).astype(np.float64), (sums[used] / counts[used]).astype(np.float64)


def latency(
    events: EventArrays,
    include: NDArray[np.bool_],
    averages: NDArray[np.float64],
    limit: float = LIMIT,
) -> Latency:
    """Figures over the events ``include`` selects (the domain, minus exclusions);
    ``averages`` are ``period_averages`` over the same events."""
    values = events.latency[include]
    delivered = values[~np.isnan(values)]
    quantiles: dict[str, float | None] = {f"p{round(q * 100)}": None for q in QUANTILES}
    top = None
    if delivered.size:
        found = np.quantile(delivered, QUANTILES, method="inverted_cdf")
        quantiles = {f"p{round(q * 100)}": float(v) for q, v in zip(QUANTILES, found, strict=True)}
        top = float(delivered.max())
    return Latency(
        delivered=int(delivered.size),
        within=int(np.count_nonzero(delivered <= limit)),
        undelivered=int(values.size - delivered.size),
        quantiles=quantiles,
        max=top,
        periods=int(averages.size),
        periods_within=int(np.count_nonzero(averages <= limit)),
        limit=limit,
    )
