"""Deferrals are summed into one info line per window, not logged once per retry."""

from __future__ import annotations

import logging

import pytest

from service.deferrals import TOP_DOMAINS, DeferralSummary
from service.metrics import AttemptReason


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def summaries(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "deliveries deferred"]


def test_one_line_per_window_by_reason_and_domain(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mailmoat.delivery")
    clock = Clock()
    summary = DeferralSummary(clock, window=60.0)
    for _ in range(500):  # a stuck downstream: hundreds of retries inside one minute
        summary.note("example.test", AttemptReason.CONNECTION)
        clock.now += 0.1
    summary.note("customer.test", AttemptReason.REPLY)
    assert summaries(caplog) == []  # the window (60 s) has not ended yet
    clock.now += 15.0
    summary.tick()  # the next attempt of any kind closes it
    (line,) = summaries(caplog)
    assert line.levelno == logging.INFO
    assert line.__dict__["deferred"] == 501
    assert line.__dict__["by_reason"] == {"connection": 500, "reply": 1}
    assert line.__dict__["by_domain"] == {"example.test": 500, "customer.test": 1}
    assert line.__dict__["window_seconds"] == 65.0
    clock.now += 120.0
    summary.tick()  # a quiet window says nothing
    assert len(summaries(caplog)) == 1


def test_many_domains_are_capped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mailmoat.delivery")
    clock = Clock()
    summary = DeferralSummary(clock)
    for i in range(TOP_DOMAINS + 5):
        summary.note(f"d{i}.test", AttemptReason.ROUTE_UNAVAILABLE)
    summary.flush()  # shutdown reports the open window
    (line,) = summaries(caplog)
    assert len(line.__dict__["by_domain"]) == TOP_DOMAINS
    assert line.__dict__["other_domains"] == 5
    assert line.__dict__["deferred"] == TOP_DOMAINS + 5
