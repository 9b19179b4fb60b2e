"""Content-rule copies say they are copies, so neither an admin nor the replay takes them for
the message's own delivery (which may have been held)."""

from __future__ import annotations

from filters.verdict import Action, Category, Verdict
from service.actions import decide
from service.rewrite import COPY_HEADER
from store.records import DeliveryKind, Spooled


def test_copies_are_marked_and_the_delivery_is_not() -> None:
    message = Spooled("Q1", 0.0, "a@sender.test", ("bob@example.test",), b"Subject: x\r\n\r\nx\r\n")
    verdict = Verdict(Action.QUARANTINE, Category.CONTENT, copy_to=("admin@example.test",))
    _, items, held = decide(message, "example.test", ("bob@example.test",), verdict, 1.0)
    assert held is not None  # the message itself is held
    [copy] = items
    assert copy.kind is DeliveryKind.COPY
    assert f"{COPY_HEADER}: content rule copy for admin@example.test".encode() in copy.prefix

    delivered = Verdict(Action.DELIVER, Category.CLEAN, copy_to=("admin@example.test",))
    _, items, _ = decide(message, "example.test", ("bob@example.test",), delivered, 1.0)
    kinds = {item.kind: item.prefix for item in items}
    assert COPY_HEADER.encode() not in kinds[DeliveryKind.DELIVER]
    assert COPY_HEADER.encode() in kinds[DeliveryKind.COPY]
