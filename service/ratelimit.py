"""Per-sender sending limits on the submission listener, on the gateway's injected clock.

A compromised customer account must not spray: each signed-in user may begin
``messages_per_minute`` transactions a minute and name ``recipients_per_hour``
recipients an hour. Moving windows (not fixed buckets) so a burst across a
minute boundary cannot double the rate. Counted when the command is accepted,
so parallel sessions of one user cannot all pass one check. The counts live in
this process; with several workers or nodes each enforces its own share.
Keys are signed-in logins, so the table is bounded by the accounts that exist.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class MovingWindow:
    """At most ``limit`` events per key in any ``seconds``-long window."""

    def __init__(self, limit: int, seconds: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.seconds = seconds
        self.clock = clock
        self._events: dict[str, deque[float]] = {}

    def take(self, key: str) -> bool:
        """Count one event for ``key`` and return True, or return False if it is over the limit."""
        now = self.clock()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.seconds:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may send again (0 when it may now)."""
        events = self._events.get(key)
        if not events or len(events) < self.limit:
            return 0.0
        return max(0.0, events[0] + self.seconds - self.clock())


class SenderLimits:
    """The two limits of one submission listener, keyed by the signed-in login."""

    def __init__(
        self,
        *,
        messages_per_minute: int,
        recipients_per_hour: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.messages = MovingWindow(messages_per_minute, 60.0, clock)
        self.recipients = MovingWindow(recipients_per_hour, 3600.0, clock)

    def message(self, login: str) -> str | None:
        """None when ``login`` may begin another message (counted), else the 450 reply."""
        if self.messages.take(login):
            return None
        wait = self.messages.retry_after(login)
        limit = self.messages.limit
        return f"450 4.7.1 Sending rate limit: {limit} messages a minute; try again in {wait:.0f} s"

    def recipient(self, login: str) -> str | None:
        """None when ``login`` may name another recipient (counted), else the 450 reply."""
        if self.recipients.take(login):
            return None
        wait = self.recipients.retry_after(login)
        limit = self.recipients.limit
        return f"450 4.7.1 Recipient limit: {limit} recipients an hour; try again in {wait:.0f} s"
