"""Per-sender sending limits on the submission listener, on the gateway's injected clock.

A compromised customer account must not spray: each signed-in user may begin
``messages_per_minute`` transactions a minute and name ``recipients_per_hour``
recipients an hour. Sliding windows (``quarantine/web/ratelimit.py``, the one
the sign-in pages use), not fixed buckets, so a burst across a minute boundary
cannot double the rate. Counted when the command is accepted, so parallel
sessions of one user cannot all pass one check. The counts live in this
process; with several workers or nodes each enforces its own share.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from quarantine.web.ratelimit import RateLimit


class SenderLimits:
    """The two limits of one submission listener, keyed by the signed-in login."""

    def __init__(
        self,
        *,
        messages_per_minute: int,
        recipients_per_hour: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.messages = RateLimit(messages_per_minute, 60.0, clock)
        self.recipients = RateLimit(recipients_per_hour, 3600.0, clock)

    def message(self, login: str) -> str | None:
        """None when ``login`` may begin another message (counted), else the 450 reply."""
        return _refusal(self.messages, login, "Sending rate limit: {} messages a minute")

    def recipient(self, login: str) -> str | None:
        """None when ``login`` may name another recipient (counted), else the 450 reply."""
        return _refusal(self.recipients, login, "Recipient limit: {} recipients an hour")


def _refusal(limit: RateLimit, login: str, what: str) -> str | None:
    if limit.allow(login):
        return None
    wait = limit.retry_after(login)
    return f"450 4.7.1 {what.format(limit.limit)}; try again in {wait:.0f} s"
