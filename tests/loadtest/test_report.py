"""What testers read: skipped files and refusals in one line each, readable report numbers,
shuffled corpora, and content-rule copies kept apart from deliveries at the sink."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosmtplib

from loadtest.cli import refusal_lines, skipped_lines
from loadtest.corpus import CorpusError
from loadtest.replaysink import ReplaySink
from loadtest.report import rows
from loadtest.sender import TRACE_HEADER


def summary(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "run": {"stopped_early": False},
        "counts": {"sent": 3162, "accepted": 0, "refused": 3162, "delivered": 0, "held": 0},
        "throughput": {"accepted_per_second": 0.0},
        "latency_ms": {"smtp": None, "round_trip": None},
        "schedule": None,
        "classification": None,
        "delivered_actions": {},
        "smtp_errors": {"550": 3162},
        "error_examples": {"550": "550 5.7.1 relaying\n denied"},
        "stage_hits": {},
        "sink": {"copies": 0},
    }
    base.update(changes)
    return base


def test_skipped_files_are_one_line_per_reason() -> None:
    found = [CorpusError(Path(f"corpus/m{i}"), "no recipient in To or Cc") for i in range(300)]
    found.append(CorpusError(Path("corpus/bad"), "unreadable"))
    assert skipped_lines(found) == [
        "skipped 300 files: no recipient in To or Cc (e.g. m0, m1)",
        "skipped 1 file: unreadable (e.g. bad)",
    ]


def test_refusals_say_why_and_hint_at_domain() -> None:
    lines = refusal_lines(summary(), domain=None)
    assert lines[0] == "3162 messages refused: 550 5.7.1 relaying denied"
    assert "--domain" in lines[1]
    assert refusal_lines(summary(), domain="example.test") == lines[:1]


def test_rows_are_readable() -> None:
    table = dict(rows(summary()))
    assert table["sent / accepted / refused"] == "3,162 / 0 / 3,162"
    assert table["refused 550"] == "3,162: 550 5.7.1 relaying denied"
    latency = {"p50": 0.4213, "p95": 12.34, "p99": 1234.5, "max": 120_000.0}
    timed = dict(rows(summary(latency_ms={"smtp": latency, "round_trip": None})))
    assert timed["SMTP reply p50 / p95 / p99 / max, ms"] == "0.42 / 12.3 / 1,234 / 120,000"


async def test_the_sink_keeps_copies_apart_from_deliveries() -> None:
    sink = ReplaySink("127.0.0.1", 0, clock=lambda: 1.0)
    await sink.start()
    try:
        head = f"{TRACE_HEADER}: run-1\r\nSubject: x\r\n"
        copy = head + "X-Mailmoat-Copy: content rule copy for admin@example.test\r\n\r\nbody\r\n"
        await aiosmtplib.send(copy.encode(), sender="a@sender.test",
                              recipients=["admin@example.test"], hostname="127.0.0.1",
                              port=sink.port)  # fmt: skip
        assert (sink.copies, sink.arrivals) == (1, {})
        await aiosmtplib.send((head + "\r\nbody\r\n").encode(), sender="a@sender.test",
                              recipients=["bob@example.test"], hostname="127.0.0.1",
                              port=sink.port)  # fmt: skip
        assert list(sink.arrivals) == ["run-1"]
    finally:
        await sink.stop()
