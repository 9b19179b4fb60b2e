"""Outbound delivery with a real aiosmtplib client against a recording aiosmtpd sink on loopback."""

from __future__ import annotations

import shutil
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from service.delivery import (
    BAD_CONNECTION,
    NO_ANSWER,
    UTF8_REQUIRED,
    Kind,
    Outcome,
    SessionPool,
    deliver,
)
from service.dsn import NO_REPLY, Failure
from service.routing import Route
from tests.smtpsink import RecordingSink, self_signed_context, started_sink

MESSAGE = b"From: alice@sender.test\r\nTo: bob@example.test\r\nSubject: hi\r\n\r\nHello.\r\n"
SENDER = "alice@sender.test"
WAIT = 5.0  # generous upper bound for the sink to record; never a timing assertion


def route(sink: RecordingSink) -> Route:
    return Route(sink.host, sink.port)


async def send(
    routes: Sequence[Route],
    rcpt_tos: Sequence[str] = ("bob@example.test",),
    data: bytes = MESSAGE,
    *,
    mail_from: str = SENDER,
    timeout: float = WAIT,
    starttls: bool = True,
    verify_certs: bool = False,
) -> Outcome:
    return await deliver(
        routes,
        mail_from,
        rcpt_tos,
        data,
        helo="gateway.mailmoat.test",
        timeout=timeout,
        starttls=starttls,
        verify_certs=verify_certs,
    )


@pytest.fixture
def closed_port() -> Iterator[Route]:
    """A port bound but not listening: connecting is refused, and nobody else can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield Route("127.0.0.1", sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[Route]:
    """A server that accepts TCP (the kernel's backlog) but never sends a greeting."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield Route("127.0.0.1", sock.getsockname()[1])


# --- outcomes on the sink -------------------------------------------------------------


async def test_accepted_mail_arrives_unchanged(sink: RecordingSink) -> None:
    outcome = await send([route(sink)], ["bob@example.test", "carol@example.test"])
    assert outcome == Outcome(("bob@example.test", "carol@example.test"), (), (), route(sink))
    assert outcome.kind is Kind.DELIVERED
    (got,) = await sink.wait_for(1, WAIT)
    assert (got.mail_from, got.rcpt_tos, got.data) == (
        SENDER,
        ("bob@example.test", "carol@example.test"),
        MESSAGE,
    )
    assert f"SIZE={len(MESSAGE)}" in got.mail_options
    assert "BODY=8BITMIME" not in got.mail_options


async def test_4xx_at_rcpt_is_temporary(sink: RecordingSink) -> None:
    sink.reply_at_rcpt("451 4.3.0 try again later")
    outcome = await send([route(sink)])
    assert outcome.kind is Kind.TEMPORARY
    assert outcome.temporary == (
        Failure("bob@example.test", "4.3.0", 451, "4.3.0 try again later"),
    )
    assert sink.received == []


async def test_5xx_at_rcpt_is_permanent(sink: RecordingSink) -> None:
    sink.reply_at_rcpt("550 5.1.1 no such user")
    outcome = await send([route(sink)])
    assert outcome.kind is Kind.PERMANENT
    assert outcome.permanent == (Failure("bob@example.test", "5.1.1", 550, "5.1.1 no such user"),)


async def test_each_recipient_gets_its_own_result(sink: RecordingSink) -> None:
    sink.reply_at_rcpt("550 5.1.1 no such user", ["gone@example.test"])
    sink.reply_at_rcpt("452 4.2.2 mailbox full", ["full@example.test"])
    rcpts = ["gone@example.test", "bob@example.test", "full@example.test"]
    outcome = await send([route(sink)], rcpts)
    assert outcome.kind is Kind.PARTIAL
    assert outcome.delivered == ("bob@example.test",)
    assert [(f.recipient, f.code) for f in outcome.temporary] == [("full@example.test", 452)]
    assert [(f.recipient, f.code) for f in outcome.permanent] == [("gone@example.test", 550)]
    (got,) = await sink.wait_for(1, WAIT)
    assert got.rcpt_tos == ("bob@example.test",)


async def test_data_reply_applies_to_accepted_recipients_only(sink: RecordingSink) -> None:
    sink.reply_at_rcpt("550 5.1.1 no such user", ["gone@example.test"])
    sink.reply_at_data("451 4.3.0 queue full")
    outcome = await send([route(sink)], ["gone@example.test", "bob@example.test"])
    assert outcome.kind is Kind.TEMPORARY
    assert [(f.recipient, f.code) for f in outcome.temporary] == [("bob@example.test", 451)]
    assert [(f.recipient, f.code) for f in outcome.permanent] == [("gone@example.test", 550)]


async def test_5xx_at_data_is_permanent(sink: RecordingSink) -> None:
    sink.reply_at_data("554 5.6.0 content rejected")
    outcome = await send([route(sink)])
    assert outcome.kind is Kind.PERMANENT
    assert outcome.permanent[0].status == "5.6.0"


async def test_421_at_rcpt_ends_the_session_for_everyone(sink: RecordingSink) -> None:
    sink.reply_at_rcpt("421 4.3.2 shutting down", ["second@example.test"])
    rcpts = ["first@example.test", "second@example.test", "third@example.test"]
    outcome = await send([route(sink)], rcpts)
    assert outcome.kind is Kind.TEMPORARY
    assert [f.recipient for f in outcome.temporary] == rcpts
    assert sink.received == []


async def test_dropped_connection_at_data_is_temporary(sink: RecordingSink) -> None:
    sink.drop_at_data()
    outcome = await send([route(sink)])
    assert outcome.kind is Kind.TEMPORARY
    (failure,) = outcome.temporary
    assert (failure.status, failure.code) == (BAD_CONNECTION, NO_REPLY)
    assert outcome.route == route(sink)  # not moved on: that server may hold the message


# --- connections and routes -------------------------------------------------------------


async def test_refused_connection_is_temporary(closed_port: Route) -> None:
    outcome = await send([closed_port])
    assert outcome.kind is Kind.TEMPORARY
    assert outcome.route is None
    (failure,) = outcome.temporary
    assert (failure.status, failure.code) == (NO_ANSWER, NO_REPLY)
    assert str(closed_port) in failure.message


async def test_next_route_when_the_first_refuses(closed_port: Route, sink: RecordingSink) -> None:
    outcome = await send([closed_port, route(sink)])
    assert outcome.kind is Kind.DELIVERED
    assert outcome.route == route(sink)
    await sink.wait_for(1, WAIT)


async def test_silent_server_times_out_and_the_next_route_is_tried(
    silent_server: Route, sink: RecordingSink
) -> None:
    alone = await send([silent_server], timeout=0.2)
    assert alone.kind is Kind.TEMPORARY
    assert alone.temporary[0].status == NO_ANSWER
    assert (await send([silent_server, route(sink)], timeout=0.2)).kind is Kind.DELIVERED


async def test_server_down_then_up(sink: RecordingSink) -> None:
    sink.stop()
    assert (await send([route(sink)])).kind is Kind.TEMPORARY
    sink.start()
    assert (await send([route(sink)])).kind is Kind.DELIVERED
    assert len(await sink.wait_for(1, WAIT)) == 1


async def test_duplicate_recipients_are_sent_once(sink: RecordingSink) -> None:
    outcome = await send([route(sink)], ["bob@example.test", "bob@example.test"])
    assert outcome.delivered == ("bob@example.test",)
    (got,) = await sink.wait_for(1, WAIT)
    assert got.rcpt_tos == ("bob@example.test",)


async def test_nothing_to_do_is_a_programming_error(closed_port: Route) -> None:
    with pytest.raises(ValueError):
        await send([], ["bob@example.test"])
    with pytest.raises(ValueError):
        await send([closed_port], [])


# --- 8-bit and UTF-8 ---------------------------------------------------------------------


async def test_8bit_body_is_declared_and_sent_as_is(sink: RecordingSink) -> None:
    data = MESSAGE.replace(b"Hello.", "Grüße, café.".encode())
    assert (await send([route(sink)], data=data)).kind is Kind.DELIVERED
    (got,) = await sink.wait_for(1, WAIT)
    assert got.data == data
    assert "BODY=8BITMIME" in got.mail_options
    assert "SMTPUTF8" not in got.mail_options  # the header is ASCII


async def test_utf8_address_uses_smtputf8(sink: RecordingSink) -> None:
    outcome = await send([route(sink)], ["bøb@example.test"], mail_from="ålice@sender.test")
    assert outcome.kind is Kind.DELIVERED
    (got,) = await sink.wait_for(1, WAIT)
    assert got.rcpt_tos == ("bøb@example.test",)
    assert "SMTPUTF8" in got.mail_options


@pytest.fixture
async def ascii_sink() -> AsyncIterator[RecordingSink]:
    server = started_sink(smtputf8=False)
    yield server
    server.stop()


async def test_utf8_address_without_smtputf8_is_permanent(ascii_sink: RecordingSink) -> None:
    outcome = await send([route(ascii_sink)], ["bøb@example.test"])
    assert outcome.kind is Kind.PERMANENT
    assert outcome.permanent[0].status == UTF8_REQUIRED
    assert ascii_sink.received == []


# --- STARTTLS ---------------------------------------------------------------------------


@pytest.fixture
async def tls_sink(tmp_path: Path) -> AsyncIterator[RecordingSink]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a throwaway certificate")
    server = started_sink(tls_context=self_signed_context(tmp_path))
    yield server
    server.stop()


async def test_starttls_is_used_when_offered_without_verification(tls_sink: RecordingSink) -> None:
    assert (await send([route(tls_sink)])).kind is Kind.DELIVERED
    (got,) = await tls_sink.wait_for(1, WAIT)
    assert got.tls


async def test_starttls_can_be_turned_off(tls_sink: RecordingSink) -> None:
    assert (await send([route(tls_sink)], starttls=False)).kind is Kind.DELIVERED
    (got,) = await tls_sink.wait_for(1, WAIT)
    assert not got.tls


async def test_verified_tls_refuses_an_untrusted_certificate(tls_sink: RecordingSink) -> None:
    outcome = await send([route(tls_sink)], verify_certs=True)
    assert outcome.kind is Kind.TEMPORARY
    assert outcome.temporary[0].status == NO_ANSWER
    assert "CERTIFICATE_VERIFY_FAILED" in outcome.temporary[0].message
    assert tls_sink.received == []


# --- the summary --------------------------------------------------------------------------

TEMP = Failure("t@example.test", "4.0.0", 451, "later")
PERM = Failure("p@example.test", "5.0.0", 550, "never")


@pytest.mark.parametrize(
    ("delivered", "temporary", "permanent", "kind"),
    [
        (("d@example.test",), (), (), Kind.DELIVERED),
        (("d@example.test",), (TEMP,), (), Kind.PARTIAL),
        (("d@example.test",), (), (PERM,), Kind.PARTIAL),
        ((), (TEMP,), (PERM,), Kind.TEMPORARY),
        ((), (TEMP,), (), Kind.TEMPORARY),
        ((), (), (PERM,), Kind.PERMANENT),
    ],
)
def test_kind_summarises_the_recipients(
    delivered: tuple[str, ...],
    temporary: tuple[Failure, ...],
    permanent: tuple[Failure, ...],
    kind: Kind,
) -> None:
    assert Outcome(delivered, temporary, permanent, None).kind is kind


async def test_pooled_sessions_are_reused_and_checked(sink: RecordingSink) -> None:

    pool = SessionPool()
    route = Route(sink.host, sink.port)
    try:
        for n in range(3):
            outcome = await deliver([route], "a@sender.test", ["bob@example.test"],
                                    f"Subject: {n}\r\n\r\nbody\r\n".encode(), helo="mx.test",
                                    timeout=10, pool=pool)  # fmt: skip
            assert outcome.kind is Kind.DELIVERED
        assert len(sink.received) == 3
        sink.stop()  # the idle session dies with the server ...
        sink.start()
        outcome = await deliver([route], "a@sender.test", ["bob@example.test"],
                                b"Subject: after\r\n\r\nbody\r\n", helo="mx.test", timeout=10,
                                pool=pool)  # fmt: skip
        assert outcome.kind is Kind.DELIVERED  # ... so RSET fails and a new one is opened
    finally:
        pool.close()
