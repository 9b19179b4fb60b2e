"""Per-sender limits: moving windows on a hand-moved clock, one count per key."""

from __future__ import annotations

from service.ratelimit import MovingWindow, SenderLimits


def test_a_moving_window_frees_one_slot_as_each_event_ages_out() -> None:
    now = [0.0]
    window = MovingWindow(2, 60.0, lambda: now[0])
    assert window.take("a") and window.take("a")
    assert not window.take("a") and window.retry_after("a") == 60.0
    assert window.take("b")  # another sender has its own count
    now[0] = 30.0
    assert not window.take("a") and window.retry_after("a") == 30.0
    now[0] = 60.0  # both events of t=0 are exactly a window old: gone
    assert window.retry_after("a") == 0.0
    assert window.take("a") and window.take("a")
    assert not window.take("a") and window.retry_after("a") == 60.0


def test_refusals_say_which_limit_and_when_to_retry() -> None:
    now = [100.0]
    limits = SenderLimits(messages_per_minute=1, recipients_per_hour=2, clock=lambda: now[0])
    assert limits.message("u") is None
    assert limits.message("u") == (
        "450 4.7.1 Sending rate limit: 1 messages a minute; try again in 60 s"
    )
    assert limits.recipient("u") is None and limits.recipient("u") is None
    now[0] += 1800
    assert limits.recipient("u") == (
        "450 4.7.1 Recipient limit: 2 recipients an hour; try again in 1800 s"
    )
