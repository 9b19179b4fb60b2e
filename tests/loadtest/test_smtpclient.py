"""The pipelining SMTP client against aiosmtpd (PIPELINING offered or not) and a scripted server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from loadtest.smtpclient import Envelope as Env
from loadtest.smtpclient import GreetingRefused, SMTPClient, SMTPError, wire

BODY = b"Subject: hi\n\nline one\n.leading dot\n..two dots\nlast line"


class Recorder:
    """An aiosmtpd handler: refuses MAIL from blocked@ (553), RCPT to refused@ (550), DATA with
    ``tempfail`` (451), ``bye`` (421); keeps the rest. Offers PIPELINING when told to."""

    def __init__(self, pipelining: bool) -> None:
        self.pipelining = pipelining
        self.ehlos = 0
        self.kept: list[tuple[str, list[str], bytes]] = []

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
        return [responses[0], "250-PIPELINING", *responses[1:]] if self.pipelining else responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("blocked@"):
            return "553 5.7.1 sender blocked"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("refused@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        if b"tempfail" in data:
            return "451 4.3.0 try later"
        if b"bye" in data:
            return "421 4.3.2 shutting down"
        self.kept.append((envelope.mail_from or "", list(envelope.rcpt_tos), data))
        return "250 2.0.0 kept"


@pytest.fixture(params=[True, False], ids=["pipelining", "lock-step"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Recorder, int]]:
    handler = Recorder(pipelining=request.param)
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(
        lambda: SMTP(handler, decode_data=False, hostname="sink.test"), "127.0.0.1", 0
    )
    yield handler, int(srv.sockets[0].getsockname()[1])
    srv.close()
    await srv.wait_closed()


def test_wire_makes_crlf_lines_stuffs_dots_and_ends_with_a_dot() -> None:
    assert wire(BODY) == (
        b"Subject: hi\r\n\r\nline one\r\n..leading dot\r\n...two dots\r\nlast line\r\n.\r\n"
    )
    assert wire(b".\r\nx\r\n") == b"..\r\nx\r\n.\r\n"
    assert wire(b"") == b".\r\n"


async def test_messages_arrive_intact_over_one_session(server: tuple[Recorder, int]) -> None:
    handler, port = server
    client = await SMTPClient.connect("127.0.0.1", port, ehlo_name="client.test", timeout=10)
    assert client.pipelining is handler.pipelining
    envelopes = [
        Env("a@sender.test", (f"bob{n}@example.test", "carol@example.test")) for n in range(5)
    ]
    for n, env in enumerate(envelopes):
        following = envelopes[n + 1] if n + 1 < len(envelopes) else None
        outcome = await client.send(env, wire(BODY + f"\nmessage {n}".encode()), following)
        assert outcome.accepted and outcome.reply.text == "2.0.0 kept" and not outcome.refused
    await client.quit()
    assert handler.ehlos == 1 and len(handler.kept) == 5
    mail_from, rcpts, data = handler.kept[3]
    assert (mail_from, rcpts) == ("a@sender.test", ["bob3@example.test", "carol@example.test"])
    assert data == wire(BODY + b"\nmessage 3")[:-3].replace(b"\r\n..", b"\r\n.")


async def test_refusals_are_outcomes_and_the_session_goes_on(server: tuple[Recorder, int]) -> None:
    handler, port = server
    client = await SMTPClient.connect("127.0.0.1", port, timeout=10)
    ok = Env("a@sender.test", ("bob@example.test",))
    cases = [
        (Env("blocked@sender.test", ("bob@example.test",)), BODY, 553, 0),
        (Env("a@sender.test", ("refused@example.test",)), BODY, 550, 1),
        (Env("a@sender.test", ("refused@example.test", "bob@example.test")), BODY, 250, 1),
        (ok, BODY + b"\ntempfail", 451, 0),
        (ok, BODY, 250, 0),
    ]
    for env, data, code, refused in cases:
        # Each refusal is followed by a message written ahead of it: both must come out right.
        outcome = await client.send(env, wire(data), ok)
        assert (outcome.reply.code, len(outcome.refused)) == (code, refused)
        if outcome.accepted and client.pipelining:
            assert (await client.send(ok, wire(BODY))).accepted
    assert not client.closed
    await client.quit()
    assert handler.ehlos == 1
    assert [rcpts for _, rcpts, _ in handler.kept][:2] == [["bob@example.test"]] * 2


async def test_421_closes_the_session(server: tuple[Recorder, int]) -> None:
    _, port = server
    client = await SMTPClient.connect("127.0.0.1", port, timeout=10)
    outcome = await client.send(Env("a@sender.test", ("bob@example.test",)), wire(b"bye\n"))
    assert outcome.reply.code == 421 and client.closed


Script = Callable[[bytes], bytes | None]


@contextlib.asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[tuple[int, list[list[bytes]]]]:
    """A server answering each command line by ``script``; yields its port and the lines of
    each read it made. On the way out it hangs up and waits for its sessions to end."""
    reads: list[list[bytes]] = []
    sessions: list[tuple[asyncio.StreamWriter, asyncio.Task[object]]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        sessions.append((writer, task))
        writer.write(b"220 scripted.test ESMTP\r\n")
        in_data = False
        while chunk := await reader.read(65536):
            lines = chunk.splitlines()
            reads.append(lines)
            for line in lines:
                if in_data:
                    in_data = line != b"."
                    reply = None if in_data else b"250 queued"
                else:
                    reply = script(line)
                    in_data = line == b"DATA"
                if reply is not None:
                    writer.write(reply + b"\r\n")
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1]), reads
    finally:
        server.close()
        for writer, _ in sessions:
            writer.close()
        await asyncio.gather(*(task for _, task in sessions))
        await server.wait_closed()


def esmtp(pipelining: bool) -> Script:
    def answer(line: bytes) -> bytes | None:
        if line.startswith(b"EHLO"):
            extra = b"250-PIPELINING\r\n" if pipelining else b""
            return b"250-scripted.test greets you\r\n" + extra + b"250-SIZE 1000\r\n250 8BITMIME"
        return b"354 go ahead" if line == b"DATA" else b"250 ok"

    return answer


@pytest.mark.parametrize(("offered", "wanted"), [(True, True), (False, True), (True, False)])
async def test_commands_are_grouped_only_when_pipelining_is_offered_and_wanted(
    offered: bool, wanted: bool
) -> None:
    pipelining = offered and wanted
    async with scripted(esmtp(offered)) as (port, reads):
        client = await SMTPClient.connect("127.0.0.1", port, timeout=10, pipelining=wanted)
        assert client.extensions["SIZE"] == "1000" and client.pipelining is pipelining
        first, second = Env("a@s.test", ("b@x.test", "c@x.test")), Env("d@s.test", ("e@x.test",))
        assert (await client.send(first, wire(b"Subject: 1\n\n1\n"), following=second)).accepted
        assert (await client.send(second, wire(b"Subject: 2\n\n2\n"))).accepted
        await client.quit()
    mail_first = b"MAIL FROM:<a@s.test> BODY=8BITMIME"
    if pipelining:
        assert reads[1] == [mail_first, b"RCPT TO:<b@x.test>", b"RCPT TO:<c@x.test>", b"DATA"]
        # The first message's content and the second envelope share one write (RFC 2920 3.1).
        assert reads[2][-4:] == [b".", b"MAIL FROM:<d@s.test> BODY=8BITMIME",
                                 b"RCPT TO:<e@x.test>", b"DATA"]  # fmt: skip
    else:
        assert reads[1:5] == [[mail_first], [b"RCPT TO:<b@x.test>"], [b"RCPT TO:<c@x.test>"],
                              [b"DATA"]]  # fmt: skip


async def test_a_silent_server_times_out_and_a_refusing_or_garbled_one_is_an_error() -> None:
    async with scripted(lambda line: None) as (port, _):
        with pytest.raises(TimeoutError):
            await SMTPClient.connect("127.0.0.1", port, timeout=0.2)
    async with scripted(lambda line: b"421 bye" if line.startswith(b"EHLO") else None) as (
        port,
        _,
    ):
        with pytest.raises(GreetingRefused) as refused:
            await SMTPClient.connect("127.0.0.1", port, timeout=5)
        assert refused.value.reply.code == 421
    async with scripted(lambda line: b"250 ok" if line.startswith(b"EHLO") else b"?") as (
        port,
        _,
    ):
        client = await SMTPClient.connect("127.0.0.1", port)
        with pytest.raises(SMTPError, match="not an SMTP reply"):
            await client.send(Env("a@s.test", ("b@x.test",)), wire(b"x"))
        client.close()


async def test_multi_line_replies_are_joined() -> None:
    def answer(line: bytes) -> bytes | None:
        if line.startswith(b"MAIL"):
            return b"550-5.7.1 first line\r\n550-5.7.1 second line\r\n550 5.7.1 last line"
        return esmtp(True)(line)

    async with scripted(answer) as (port, _):
        client = await SMTPClient.connect("127.0.0.1", port)
        outcome = await client.send(Env("a@s.test", ("b@x.test",)), wire(b"x"))
        await client.quit()
    assert outcome.reply.code == 550 and not outcome.accepted
    assert outcome.reply.text == "5.7.1 first line\n5.7.1 second line\n5.7.1 last line"


async def test_sending_another_envelope_than_the_one_written_ahead_is_refused() -> None:
    async with scripted(esmtp(True)) as (port, _):
        client = await SMTPClient.connect("127.0.0.1", port, timeout=10)
        first, second = Env("a@s.test", ("b@x.test",)), Env("a@s.test", ("c@x.test",))
        await client.send(first, wire(BODY), following=second)
        with pytest.raises(RuntimeError, match="written ahead"):
            await client.send(first, wire(BODY))
        client.close()
