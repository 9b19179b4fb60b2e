"""A sliding-window rate limit per key (an address, a client IP), on an injected clock."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class RateLimit:
    """At most ``limit`` events per key in any ``window`` seconds; memory bounded by ``keys``."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float], keys: int = 10_000
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.keys = keys
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Count one event for ``key``; False (and not counted) when it is over the limit."""
        now = self.clock()
        times = self._seen.pop(key, None) or deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        allowed = len(times) < self.limit
        if allowed:
            times.append(now)
        self._seen[key] = times  # re-inserted: the dict's order is least recently used first
        while len(self._seen) > self.keys:
            del self._seen[next(iter(self._seen))]
        return allowed

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may have another event (0 when it may now)."""
        times = self._seen.get(key)
        if not times or len(times) < self.limit:
            return 0.0
        return max(0.0, times[0] + self.window - self.clock())
