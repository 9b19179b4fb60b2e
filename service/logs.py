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


def configure(level: str = "INFO") -> logging.handlers.QueueListener:
    """JSON lines on stderr, formatted and written by a thread, not on the event loop.

    Returns the listener; stop it at exit so queued lines are flushed.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, handler, respect_handler_level=False)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(level)
    # aiosmtpd logs every command at INFO; our one line per message says what matters.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    listener.start()
    return listener
