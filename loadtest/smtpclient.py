"""A pipelining SMTP client (RFC 2920): a load generator that awaits every reply measures itself.

One ``SMTPClient`` is one session on asyncio streams. ``send`` writes
``MAIL FROM``, every ``RCPT TO`` and ``DATA`` in one write and then reads
their replies; after ``354`` it writes the message (already in wire form:
CRLF line ends, dot-stuffed, ending in ``.``; see ``wire``) and reads the
final reply. Given the ``following`` envelope, it writes that envelope's
commands right behind the message, as RFC 2920 allows (message content may
start a group), so a busy session costs one round trip per message; the
next ``send`` must then be for that envelope. A server that does not
advertise ``PIPELINING`` gets every command in lock-step.

Refusals are values (an ``Outcome`` with the deciding reply); only a broken
session raises: ``SMTPError`` (protocol, closed by the server),
``TimeoutError`` or ``OSError``. The caller then closes the client and
opens a new one; an envelope written ahead on a broken session never
completed and can be sent again.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r?\n")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)
_MAX_REPLY_LINE = 64 * 1024  # StreamReader limit: a reply line longer than this is not SMTP


class SMTPError(Exception):
    """The session cannot go on: the server closed it, or said something that is not SMTP."""


class GreetingRefused(SMTPError):
    """The server answered the connection (or EHLO/HELO) with something other than 2xx."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"{reply.code} {reply.text}")
        self.reply = reply


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply; a multi-line reply's lines are joined with newlines."""

    code: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who a message is from and for, as given to ``MAIL FROM`` and ``RCPT TO``."""

    mail_from: str
    rcpt_tos: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A transaction's end: the deciding reply, the recipients refused on the way, its start."""

    reply: Reply  # the final reply after the data, or the refusal that ended the transaction
    refused: tuple[tuple[str, Reply], ...]
    started: float  # clock() when MAIL FROM was written: the transaction's first byte

    @property
    def accepted(self) -> bool:
        return 200 <= self.reply.code < 300


def wire(data: bytes) -> bytes:
    """A message as it goes after ``354``: CRLF line ends, dot-stuffed, then ``.`` on its own."""
    data = _LEADING_DOT.sub(b"..", _LINE_END.sub(b"\r\n", data))
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SMTPClient:
    """One SMTP session; open with ``await SMTPClient.connect(...)``, end with ``quit``."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        timeout: float,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.timeout = timeout
        self.clock = clock
        self.extensions: dict[str, str] = {}  # EHLO keyword (upper case) -> its parameters
        self._ahead: tuple[Envelope, int, float] | None = None  # written: replies owed, when

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        ehlo_name: str = "localhost",
        timeout: float = 60.0,
        pipelining: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> SMTPClient:
        """Connect, read the greeting and say EHLO (HELO if EHLO is refused).

        ``pipelining=False`` talks lock-step even when the server offers
        PIPELINING (to compare, or to work around a broken server).
        """
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=_MAX_REPLY_LINE)
        client = cls(reader, writer, timeout=timeout, clock=clock)
        try:
            (greeting,) = await client._replies(1)
            if greeting.code != 220:
                raise GreetingRefused(greeting)
            await client._hello(ehlo_name)
        except BaseException:
            client.close()
            raise
        if not pipelining:
            client.extensions.pop("PIPELINING", None)
        return client

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.extensions

    @property
    def closed(self) -> bool:
        return self._writer.is_closing()

    async def _hello(self, name: str) -> None:
        (reply,) = await self._command(f"EHLO {name}\r\n".encode())
        if reply.code == 250:
            # The first line is the server's name; each later line is one extension.
            for line in reply.text.split("\n")[1:]:
                keyword, _, params = line.strip().partition(" ")
                self.extensions[keyword.upper()] = params
            return
        if reply.code == 421:
            raise GreetingRefused(reply)
        (reply,) = await self._command(f"HELO {name}\r\n".encode())
        if reply.code != 250:
            raise GreetingRefused(reply)

    def _commands(self, envelope: Envelope) -> list[bytes]:
        """MAIL FROM, each RCPT TO, DATA; 8BITMIME is declared for every message if offered."""
        if not envelope.rcpt_tos:
            raise ValueError("a transaction needs at least one recipient")
        params = b" BODY=8BITMIME" if "8BITMIME" in self.extensions else b""
        if not (envelope.mail_from + "".join(envelope.rcpt_tos)).isascii():
            params += b" SMTPUTF8" if "SMTPUTF8" in self.extensions else b""
        mail = b"MAIL FROM:<" + envelope.mail_from.encode() + b">" + params + b"\r\n"
        rcpts = [b"RCPT TO:<" + r.encode() + b">\r\n" for r in envelope.rcpt_tos]
        return [mail, *rcpts, b"DATA\r\n"]

    async def send(
        self, envelope: Envelope, payload: bytes, following: Envelope | None = None
    ) -> Outcome:
        """One transaction; ``payload`` is in wire form (``wire(data)``).

        With ``following`` (and PIPELINING) the next envelope's commands go
        out right behind the message; the next call must send that envelope.
        """
        if self._ahead is not None:
            ahead, owed, started = self._ahead
            if ahead is not envelope:
                raise RuntimeError("send() must continue with the envelope written ahead")
            self._ahead = None
            replies = await self._replies(owed)
        elif self.pipelining:
            # RFC 2920: MAIL, RCPT and DATA may share one write; DATA must end the group.
            commands = self._commands(envelope)
            started = self.clock()
            replies = await self._command(b"".join(commands), len(commands))
        else:
            started = self.clock()
            replies = await self._lock_step(self._commands(envelope))
        count = len(envelope.rcpt_tos)
        mail, rcpts = replies[0], replies[1 : count + 1]
        data = replies[-1] if len(replies) == count + 2 else None
        refused = tuple((r, reply) for r, reply in zip(envelope.rcpt_tos, rcpts, strict=False)
                        if not reply.ok)  # fmt: skip
        if not (mail.ok and len(refused) < count and data is not None and data.code == 354):
            if data is not None and data.code == 354:
                # DATA taken for a failed transaction: end it with an empty message (RFC 2920).
                await self._command(b".\r\n")
            if not mail.ok:  # the recipients' replies only say there was no transaction
                return await self._ended(Outcome(mail, (), started), reset=False)
            # Lock-step sends DATA only once a recipient is accepted, so data is there then.
            deciding = refused[0][1] if len(refused) == count or data is None else data
            return await self._ended(Outcome(deciding, refused, started), reset=True)
        if following is not None and self.pipelining:
            commands = self._commands(following)
            self._writer.write(payload + b"".join(commands))
            self._ahead = (following, len(commands), self.clock())
        else:
            self._writer.write(payload)
        await self._writer.drain()
        (final,) = await self._replies(1)
        return await self._ended(Outcome(final, refused, started), reset=False)

    async def _lock_step(self, commands: list[bytes]) -> list[Reply]:
        """Commands one at a time; stops after a refused MAIL or with no recipient left for DATA."""
        (mail,) = await self._command(commands[0])
        replies = [mail]
        if not mail.ok:
            return replies
        for command in commands[1:-1]:
            replies += await self._command(command)
        if any(reply.ok for reply in replies[1:]):
            replies += await self._command(commands[-1])
        return replies

    async def _ended(self, outcome: Outcome, *, reset: bool) -> Outcome:
        """``outcome``, after RSET when a refusal left a transaction open; 421 ends the session."""
        if outcome.reply.code == 421:
            self.close()
        elif reset:
            (reply,) = await self._command(b"RSET\r\n")
            if reply.code != 250:
                self.close()  # a session that cannot reset cannot be trusted with the next message
        return outcome

    async def quit(self) -> None:
        """Say QUIT and close; a server that hangs up first is fine."""
        try:
            if not self.closed:
                await self._command(b"QUIT\r\n")
        except (SMTPError, TimeoutError, OSError):
            pass  # the session is over either way
        finally:
            self.close()

    def close(self) -> None:
        self._writer.close()

    async def _command(self, data: bytes, replies: int = 1) -> list[Reply]:
        """Write ``data`` and read ``replies`` replies, all within the timeout."""
        self._writer.write(data)
        await self._writer.drain()
        return await self._replies(replies)

    async def _replies(self, count: int) -> list[Reply]:
        try:
            async with asyncio.timeout(self.timeout):
                return [await self._reply() for _ in range(count)]
        except asyncio.IncompleteReadError:
            raise SMTPError("connection closed by the server") from None
        except asyncio.LimitOverrunError:
            raise SMTPError(f"reply line longer than {_MAX_REPLY_LINE} bytes") from None

    async def _reply(self) -> Reply:
        lines = []
        while True:
            line = await self._reader.readuntil(b"\n")
            code, sep = line[:3], line[3:4]
            if not code.isdigit() or sep not in (b" ", b"-", b"\r", b"\n"):
                raise SMTPError(f"not an SMTP reply: {line[:80]!r}")
            lines.append(line[4:].rstrip(b"\r\n").decode("utf-8", "replace"))
            if sep != b"-":
                return Reply(int(code), "\n".join(lines))
