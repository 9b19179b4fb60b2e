"""Open-loop arrival schedules, fixed before the run so that a slow server cannot slow the clock.

Pure: offsets in seconds from the start of the run, from the rate and an
injected random generator, bounded by a count, a duration or both. The
replay paces its sessions by these offsets and records how late each
message actually started (the schedule lag).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Arrivals = Literal["constant", "poisson"]
ARRIVALS: tuple[Arrivals, ...] = ("constant", "poisson")


@dataclass(frozen=True, slots=True)
class Bounds:
    """How much to send: at most ``count`` messages, starting within ``duration`` seconds."""

    count: int | None = None
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.count is None and self.duration is None:
            raise ValueError("a run needs a bound: give a count, a duration or both")
        if self.count is not None and self.count < 0:
            raise ValueError(f"count must not be negative, got {self.count}")
        if self.duration is not None and not (self.duration >= 0 and math.isfinite(self.duration)):
            raise ValueError(f"duration must be a finite number of seconds, got {self.duration}")

    def admits(self, index: int, offset: float) -> bool:
        """Whether message ``index`` (from 0), starting ``offset`` seconds in, is in bounds."""
        if self.count is not None and index >= self.count:
            return False
        return self.duration is None or offset < self.duration


def arrival_offsets(
    rate: float, arrivals: Arrivals, bounds: Bounds, rng: random.Random
) -> Iterator[float]:
    """Start offsets (seconds from the run's start) of every message the bounds admit.

    ``constant``: one message every ``1/rate`` seconds, the first at 0.
    ``poisson``: exponential gaps with mean ``1/rate`` (a Poisson process),
    the first after one gap, drawn from ``rng`` so a seed repeats a run.
    """
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be a positive number of messages per second, got {rate}")
    if arrivals not in ARRIVALS:
        raise ValueError(f"arrivals must be one of {', '.join(ARRIVALS)}, got {arrivals!r}")
    index, offset = 0, 0.0
    while True:
        if arrivals == "poisson":
            offset += rng.expovariate(rate)
        else:
            offset = index / rate  # not a running sum: no drift from rounding over long runs
        if not bounds.admits(index, offset):
            return
        yield offset
        index += 1


def expected_count(rate: float, bounds: Bounds) -> int | None:
    """About how many messages a schedule holds (exact for constant arrivals); None: unknown."""
    by_time = math.ceil(rate * bounds.duration) if bounds.duration is not None else None
    if bounds.count is None:
        return by_time
    return bounds.count if by_time is None else min(bounds.count, by_time)
