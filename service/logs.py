"""Structured logs: one JSON object per line, with the ``extra`` fields a call passed.

Operators feed these to Loki/Elasticsearch; one line per message carries its
queue id, verdict and timings, so a message can be followed by grep.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RateLimit(logging.Filter):
    """At most ``burst`` warnings per ``window`` seconds for each logger and message template.

    A flood of one error (asyncio's "accept() out of system resource" when
    descriptors run out, thousands per second) must not fill the disk or bury
    everything else. The first line after a quiet window says how many were
    dropped (``suppressed``). INFO and below pass untouched: they are one line
    per message by design.
    """

    MAX_KEYS = 1000

    def __init__(
        self, burst: int = 20, window: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.burst, self.window, self.clock = burst, window, clock
        self._seen: dict[tuple[str, str], tuple[float, int, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        start, count, dropped = self._seen.get(key, (now, 0, 0))
        if now - start >= self.window:
            if dropped:
                record.suppressed = dropped
            start, count, dropped = now, 0, 0
        passed = count < self.burst
        if len(self._seen) >= self.MAX_KEYS and key not in self._seen:
            self._seen.clear()  # templates are code constants; this only bounds a pathology
        self._seen[key] = (start, count + passed, dropped + (not passed))
        return passed


def configure(level: str = "INFO") -> logging.handlers.QueueListener:
    """JSON lines on stderr, formatted and written by a thread, not on the event loop.

    Returns the listener; stop it at exit so queued lines are flushed.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, handler, respect_handler_level=False)
    root = logging.getLogger()
    queued = logging.handlers.QueueHandler(records)
    queued.addFilter(RateLimit())
    root.handlers[:] = [queued]
    root.setLevel(level)
    # aiosmtpd logs every command at INFO; our one line per message says what matters.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    listener.start()
    return listener
