"""Log floods are cut to a burst per window, with a count of what was dropped."""

from __future__ import annotations

import logging

from service.logs import RateLimit


def _record(msg: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("asyncio", level, __file__, 1, msg, None, None)


def test_a_flood_of_one_error_is_cut_and_counted() -> None:
    now = [0.0]
    limit = RateLimit(burst=3, window=10.0, clock=lambda: now[0])
    flood = "socket.accept() out of system resource"
    passed = [limit.filter(_record(flood)) for _ in range(7900)]
    assert passed.count(True) == 3
    assert limit.filter(_record("another error"))  # other templates keep their own budget
    assert limit.filter(_record("info line", logging.INFO))  # per-message lines never cut
    now[0] = 10.0
    after = _record(flood)
    assert limit.filter(after)
    assert after.suppressed == 7897  # type: ignore[attr-defined]
