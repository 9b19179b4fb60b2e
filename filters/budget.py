"""A per-message time budget: a deadline on an injected clock, checked between stages.

The pipeline stays a function of its inputs: the clock is passed in (the
gateway passes ``time.perf_counter``, tests a fake one), and without one there
is no deadline at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


def _still() -> float:
    return 0.0


@dataclass(frozen=True, slots=True)
class Deadline:
    """The moment, on ``clock``, after which filtering stops and says so."""

    at: float
    clock: Clock
    seconds: float

    @classmethod
    def after(cls, seconds: float, clock: Clock | None) -> Deadline:
        """A deadline ``seconds`` from now on ``clock``; no clock, no deadline."""
        if clock is None:
            return NEVER
        return cls(clock() + seconds, clock, seconds)

    def passed(self) -> bool:
        return self.at != math.inf and self.clock() >= self.at


NEVER = Deadline(math.inf, _still, math.inf)
