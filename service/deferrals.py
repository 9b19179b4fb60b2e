"""One info line a minute that sums up deferred deliveries, instead of one line per retry.

While a customer's server is down every queued message is retried on its
schedule: thousands of deferrals an hour, each logged at debug. An operator
tailing the log at info still needs to see that mail is piling up and why,
so deferrals are counted by domain and reason and written as one line per
window. The window closes on the next attempt after it ends (any result), so
a recovery is reported promptly, and on shutdown.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from service.metrics import AttemptReason

log = logging.getLogger("mailmoat.delivery")

WINDOW = 60.0
"""Seconds summed into one line."""

TOP_DOMAINS = 10
"""Domains named in one line; the rest are counted under ``other_domains``."""


class DeferralSummary:
    """Counts deferrals on an injected clock and logs a summary once per ``window``."""

    def __init__(self, clock: Callable[[], float], window: float = WINDOW) -> None:
        self.clock = clock
        self.window = window
        self._start = clock()
        self._counts: Counter[tuple[str, AttemptReason]] = Counter()

    def note(self, domain: str, reason: AttemptReason) -> None:
        """Count one deferral; may close the window."""
        self._counts[(domain, reason)] += 1
        self.tick()

    def tick(self) -> None:
        """Close the window if it has ended: log what it counted (nothing if none)."""
        now = self.clock()
        if now - self._start >= self.window:
            self._emit(now)

    def flush(self) -> None:
        """Log what the open window counted so far (at shutdown)."""
        self._emit(self.clock())

    def _emit(self, now: float) -> None:
        if self._counts:
            domains: Counter[str] = Counter()
            reasons: Counter[str] = Counter()
            for (domain, reason), n in self._counts.items():
                domains[domain] += n
                reasons[reason.value] += n
            named = dict(domains.most_common(TOP_DOMAINS))
            log.info(
                "deliveries deferred",
                extra={
                    "deferred": sum(self._counts.values()),
                    "window_seconds": round(now - self._start, 1),
                    "by_reason": dict(sorted(reasons.items())),
                    "by_domain": named,
                    "other_domains": len(domains) - len(named),
                },
            )
        self._start, self._counts = now, Counter()
