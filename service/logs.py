"""Structured logs: one JSON object per line, with the ``extra`` fields a call passed.

Operators feed these to Loki/Elasticsearch; one line per message carries its
queue id, verdict and timings, so a message can be followed by grep. Lines
stay machine-clean: no ANSI colour codes (uvicorn's ``color_message`` is
dropped), a socket peer becomes ``peer_host`` and ``peer_port`` fields.
``readable`` turns a line back into one short line for people (``make demo``).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_DROPPED = {"color_message"}
"""uvicorn repeats its message with ANSI colours in this field; the plain one is enough."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {}
    for key, value in vars(record).items():
        if key in _STANDARD or key in _DROPPED:
            continue
        if key == "peer" and isinstance(value, tuple) and len(value) >= 2:
            fields["peer_host"], fields["peer_port"] = value[0], value[1]
        else:
            fields[key] = value
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _ANSI.sub("", record.getMessage()),
        }
        entry.update(_fields(record))
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


def configure(level: str = "INFO", path: Path | None = None) -> logging.handlers.QueueListener:
    """JSON lines on stderr (or appended to ``path``), written by a thread, not the event loop.

    Returns the listener; ``stop`` it at exit so queued lines are flushed and files closed.
    """
    handler: logging.Handler = (
        logging.StreamHandler(sys.stderr)
        if path is None
        else logging.FileHandler(path, encoding="utf-8")
    )
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
    # Alembic says which dialect it uses every time a store is opened (CLI commands, feeds).
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    listener.start()
    return listener


def stop(listener: logging.handlers.QueueListener) -> None:
    """Flush what is queued and close the handlers (a log file)."""
    listener.stop()
    for handler in listener.handlers:
        handler.close()


def readable(line: str) -> str:
    """One JSON log line as ``HH:MM:SS level logger: msg key=value ...`` for a terminal."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return line.rstrip("\n")
    if not isinstance(entry, dict):
        return line.rstrip("\n")
    when = str(entry.pop("time", ""))[11:19]
    level = str(entry.pop("level", ""))
    logger = str(entry.pop("logger", "")).removeprefix("mailmoat.")
    msg = str(entry.pop("msg", ""))
    entry.pop("exception", None)
    extra = " ".join(
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in entry.items()
        if v not in (None, "", [], {})
    )
    return f"{when} {level:7} {logger}: {msg}" + (f"  {extra}" if extra else "")
