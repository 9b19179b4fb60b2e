"""Content-rule copies say they are copies, so neither an admin nor the replay takes them for
the message's own delivery (which may have been held)."""

from __future__ import annotations

import pytest

from filters.mail import Mail
from filters.verdict import Action, Category, Verdict
from service.actions import SUBJECT_CHARS, decide, subject_of
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


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: Quarterly planning\r\nFrom: a@b.test\r\n\r\nbody\r\n",
        b"Subject: =?utf-8?q?caf=C3=A9_au_lait?=\r\n\r\nbody\r\n",
        b"Subject: folded\r\n  over two lines\r\n\r\nbody\r\n",
        b"From: a@b.test\r\n\r\nno subject\r\n",
        b"Subject: bare LF line ends\n\nbody\n",
        b"Subject: " + b"x" * 2000 + b"\r\n\r\nbody\r\n",
        b"Subject: =?bogus?q?broken?=\r\n\r\nSubject: in the body\r\n",
    ],
)
def test_the_filter_workers_subject_is_the_one_the_gateway_would_read(raw: bytes) -> None:
    """The outcome records the Subject the filter worker read from the whole message; a
    message that fails filtering gets it from ``subject_of``, which reads the header only."""
    assert Mail(raw).subject[:SUBJECT_CHARS] == subject_of(raw)
