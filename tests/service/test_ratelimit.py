"""Per-sender limits on a hand-moved clock: each login its own count, each refusal says
which limit and when to try again."""

from __future__ import annotations

from service.ratelimit import SenderLimits


def test_messages_a_minute_free_up_as_each_ages_out() -> None:
    now = [0.0]
    limits = SenderLimits(messages_per_minute=2, recipients_per_hour=100, clock=lambda: now[0])
    assert limits.message("a") is None and limits.message("a") is None
    assert limits.message("a") == (
        "450 4.7.1 Sending rate limit: 2 messages a minute; try again in 60 s"
    )
    assert limits.message("b") is None  # another sender has its own count
    now[0] = 30.0
    assert limits.message("a") == (
        "450 4.7.1 Sending rate limit: 2 messages a minute; try again in 30 s"
    )
    now[0] = 60.0  # both messages of t=0 are exactly a minute old: gone
    assert limits.message("a") is None and limits.message("a") is None
    assert limits.message("a") is not None


def test_recipients_an_hour() -> None:
    now = [100.0]
    limits = SenderLimits(messages_per_minute=1, recipients_per_hour=2, clock=lambda: now[0])
    assert limits.recipient("u") is None and limits.recipient("u") is None
    now[0] += 1800
    assert limits.recipient("u") == (
        "450 4.7.1 Recipient limit: 2 recipients an hour; try again in 1800 s"
    )
    now[0] += 1800
    assert limits.recipient("u") is None
