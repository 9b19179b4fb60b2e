"""JSON log lines: clean fields for machines (no ANSI, no uvicorn colour copy, peer split),
one short line for people, and a real file written through the queue listener."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from service.logs import JsonFormatter, configure, readable, stop


def record(msg: str, **extra: object) -> logging.LogRecord:
    entry = logging.makeLogRecord({"name": "mailmoat.smtp", "levelname": "INFO", "msg": msg})
    for key, value in extra.items():
        setattr(entry, key, value)
    return entry


def test_lines_are_clean_json() -> None:
    line = JsonFormatter().format(
        record(
            "\x1b[32mStarted\x1b[0m server",
            color_message="\x1b[1mStarted\x1b[0m server",
            peer=("127.0.0.1", 39616),
            queue_id="Q1",
        )
    )
    entry = json.loads(line)
    assert entry["msg"] == "Started server"
    assert "color_message" not in entry and "\x1b" not in line
    assert (entry["peer_host"], entry["peer_port"]) == ("127.0.0.1", 39616)
    assert entry["queue_id"] == "Q1" and "peer" not in entry


def test_readable_line() -> None:
    line = JsonFormatter().format(record("filtered", queue_id="Q1", symbols=[], score=1.5))
    text = readable(line)
    assert text.endswith("info    smtp: filtered  queue_id=Q1 score=1.5")
    line = JsonFormatter().format(record("filtered", symbols=["A", "B"]))
    assert readable(line).endswith("filtered  symbols=A,B")
    assert readable("not json\n") == "not json"


def test_configure_writes_a_file(tmp_path: Path) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    listener = configure(path=tmp_path / "gateway.log")
    try:
        logging.getLogger("mailmoat.test").info("hello", extra={"peer": ("::1", 25, 0, 0)})
    finally:
        stop(listener)
        root.handlers[:], root.level = handlers, level
    [line] = (tmp_path / "gateway.log").read_text().splitlines()
    assert json.loads(line)["peer_host"] == "::1"
