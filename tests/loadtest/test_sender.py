"""The load generator against a real sink on loopback: counts, traces, reused sessions, refusals."""

from __future__ import annotations

import socket

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from loadtest.sender import TRACE_HEADER, Outgoing, Sent, send_all, stamp
from loadtest.sink import TraceSink, trace_of


def message(n: int, rcpt: str = "bob@example.test", subject: str = "hello") -> Outgoing:
    data = f"From: alice@sender.test\nTo: {rcpt}\nSubject: {subject} {n}\n\nbody {n}\n.dot\n"
    return Outgoing(data.encode(), "alice@sender.test", (rcpt,))


class RefusingSink(TraceSink):
    """Refuses RCPT to ``refused@`` (550) and DATA with ``tempfail`` in it (451); counts EHLOs."""

    ehlos = 0

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.ehlos += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("refused@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if b"tempfail" in (envelope.original_content or b""):
            return "451 4.3.0 try later"
        return await super().handle_DATA(server, session, envelope)


async def test_every_message_arrives_once_with_its_trace() -> None:
    sink = TraceSink()
    await sink.start()
    try:
        messages = [message(n) for n in range(60)]
        seen: list[Sent] = []
        report = await send_all(
            ("127.0.0.1", sink.port), messages, concurrency=7, run="r1", on_result=seen.append
        )
        await sink.wait_for(60, timeout=10)
    finally:
        await sink.stop()
    assert report.accepted == 60 and not report.errors and seen == report.results
    assert sorted(r.index for r in report.results) == list(range(60))
    assert set(sink.arrivals) == {f"r1-{n}" for n in range(60)}
    assert sink.repeats == sink.untraced == 0
    for sent in report.results:
        assert sent.trace == f"r1-{sent.index}" and sent.code == 250
        assert sent.started <= sent.replied and sent.started <= sink.arrivals[sent.trace]
    assert report.rate > 0


async def test_sessions_are_reused_and_refusals_counted_by_code() -> None:
    sink = RefusingSink()
    await sink.start()
    try:
        messages = [
            message(n, rcpt="refused@example.test" if n % 5 == 0 else "bob@example.test",
                    subject="tempfail" if n % 7 == 3 else "hello")
            for n in range(40)
        ]  # fmt: skip
        report = await send_all(("127.0.0.1", sink.port), messages, concurrency=3, run="r2")
    finally:
        await sink.stop()
    refused = [n for n in range(40) if n % 5 == 0]
    tempfail = [n for n in range(40) if n % 7 == 3 and n % 5 != 0]
    assert report.errors == {"550": len(refused), "451": len(tempfail)}
    assert report.accepted == 40 - len(refused) - len(tempfail)
    assert {r.index for r in report.results if r.code == 550} == set(refused)
    assert set(sink.arrivals) == {r.trace for r in report.results if r.accepted}
    assert sink.ehlos == 3  # every session kept its connection through the refusals


async def test_an_unreachable_server_fails_every_message_without_hanging() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        report = await send_all(("127.0.0.1", port), [message(n) for n in range(5)],
                                concurrency=2, run="r3", timeout=5)  # fmt: skip
    assert report.accepted == 0 and sum(report.errors.values()) == 5
    assert all(r.code == 0 and r.text for r in report.results)


def test_outgoing_from_file_drops_the_mbox_from_line() -> None:
    raw = b"From alice@sender.test Thu Aug 22 12:46:39 2002\nSubject: x\n\nbody\n"
    item = Outgoing.from_file(raw, "alice@sender.test", ["bob@example.test"])
    assert item.data == b"Subject: x\n\nbody\n" and item.rcpt_tos == ("bob@example.test",)
    assert Outgoing.from_file(b"Subject: y\n\n", "a@b.test", []).data == b"Subject: y\n\n"


def test_stamp_puts_the_trace_first() -> None:
    stamped = stamp(b"Subject: x\n\nbody\n", "run-7")
    assert stamped.startswith(f"{TRACE_HEADER}: run-7\r\n".encode())
    assert trace_of(stamped) == "run-7"


async def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        await send_all(("127.0.0.1", 1), [message(0)], concurrency=0, run="r")
