"""The SMTP edge under hostile or odd input: addresses, floods, garbage, overload."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiosmtplib
import pytest

from service.app import Gateway
from tests.service.conftest import Start
from tests.service.gatewayfixtures import (
    RawSession,
    eventually,
    message,
    rows,
    send,
)
from tests.smtpsink import RecordingSink, self_signed_context


async def _transaction(port: int, mail: bytes, rcpt: bytes) -> tuple[str, str]:
    session = await RawSession.open(port)
    try:
        await session.command(b"EHLO client.test")
        return await session.command(mail), await session.command(rcpt)
    finally:
        await session.close()


async def test_null_sender_stays_null_to_the_customer(
    start_gateway: Start, sink: RecordingSink
) -> None:
    gateway = await start_gateway()
    _, reply = await send(gateway.smtp_port, message(subject="a bounce"), sender="")
    queue_id = reply.rsplit(" ", 1)[1]
    (got,) = await sink.wait_for(1, timeout=15)
    assert got.mail_from == "<>"  # the sink saw MAIL FROM:<>
    db = gateway.config.store.path
    assert rows(db, f"SELECT mail_from FROM messages WHERE id = '{queue_id}'") == [("",)]
    await eventually(lambda: rows(db, "SELECT state FROM deliveries") == [("delivered",)])


@pytest.mark.parametrize(
    ("rcpt", "reply"),
    [
        (b"RCPT TO:<\x9a\xd8\xb1@example.test>", "553 5.1.3"),  # not UTF-8: cannot be sent on
        (b"RCPT TO:<j\xc3\xb6rg@example.test>", "553 5.6.7"),  # UTF-8 without SMTPUTF8
        (b"RCPT TO:<user%evil.invalid@example.test>", "550 5.7.1"),
        (b"RCPT TO:<evil.invalid!user@example.test>", "550 5.7.1"),
        (b'RCPT TO:<"user@evil.invalid"@example.test>', "550 5.7.1"),
        (b"RCPT TO:<bob@example.test>", "250 2.1.5"),
    ],
)
async def test_recipients_that_cannot_be_delivered_faithfully_are_refused_at_rcpt(
    start_gateway: Start, rcpt: bytes, reply: str
) -> None:
    gateway = await start_gateway()
    mail, got = await _transaction(gateway.smtp_port, b"MAIL FROM:<alice@sender.test>", rcpt)
    assert mail.startswith("250")
    assert got.startswith(reply)


async def test_routing_local_parts_can_be_allowed(start_gateway: Start) -> None:
    gateway = await start_gateway(smtp={"allow_routing_localparts": True})
    _, got = await _transaction(
        gateway.smtp_port, b"MAIL FROM:<a@sender.test>", b"RCPT TO:<u%x@example.test>"
    )
    assert got.startswith("250")


async def test_undecodable_sender_is_refused_at_mail(start_gateway: Start) -> None:
    gateway = await start_gateway()
    mail, _ = await _transaction(
        gateway.smtp_port, b"MAIL FROM:<\xff\xfe@sender.test>", b"RCPT TO:<bob@example.test>"
    )
    assert mail.startswith("553 5.1.7")


async def _stall_filtering(gateway: Gateway, sink: RecordingSink, tmp_path: Path) -> None:
    """Make every filter process fail to start, so what is accepted stays in the backlog."""
    await send(gateway.smtp_port, message("warm up"))
    await sink.wait_for(1, timeout=30)
    (tmp_path / "policy.toml").write_text("not TOML [")
    os.kill(gateway.classifier.pool.pids()[0], signal.SIGKILL)


async def test_backlog_over_its_byte_limit_gets_451_after_data(
    start_gateway: Start, sink: RecordingSink, tmp_path: Path
) -> None:
    gateway = await start_gateway(
        filter={"backlog_bytes": 8192, "processes": 1}, smtp={"max_message_size": 8192}
    )
    await _stall_filtering(gateway, sink, tmp_path)
    await send(gateway.smtp_port, message("fills most of it", body="x" * 6000))
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await send(gateway.smtp_port, message("does not fit", body="y" * 3000))
    assert refused.value.code == 451 and refused.value.message.startswith("4.3.2")
    db = gateway.config.store.path
    assert rows(db, "SELECT count(*) FROM messages WHERE state = 'spooled'") == [(1,)]


async def test_backlog_over_its_message_limit_gets_451_at_mail(
    start_gateway: Start, sink: RecordingSink, tmp_path: Path
) -> None:
    gateway = await start_gateway(filter={"backlog_messages": 1, "processes": 1})
    await _stall_filtering(gateway, sink, tmp_path)
    await send(gateway.smtp_port, message("stays in the backlog"))
    session = await RawSession.open(gateway.smtp_port)
    await session.command(b"EHLO client.test")
    assert (await session.command(b"MAIL FROM:<alice@sender.test>")).startswith("451 4.3.2")
    await session.close()


async def test_sessions_per_client_are_limited_with_421(start_gateway: Start) -> None:
    gateway = await start_gateway(smtp={"max_sessions_per_client": 2})
    # The gateway's own availability probe connects from 127.0.0.1 at start: let it finish,
    # or it takes one of this client's two slots.
    db = gateway.config.store.path
    await eventually(lambda: rows(db, "SELECT count(*) FROM sla_availability") != [(0,)])
    await eventually(lambda: not gateway.sessions)
    held = [await RawSession.open(gateway.smtp_port) for _ in range(2)]
    assert len(gateway.sessions) == 2  # both held sessions were greeted, not refused
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.smtp_port)
    assert (await reader.readline()).startswith(b"421 4.7.0")
    assert await reader.read() == b""  # closed by the gateway
    writer.close()
    await held[0].close()
    # The slot frees when the gateway sees the close, not when the client sends it.
    await eventually(lambda: len(gateway.sessions) < 2)
    again = await RawSession.open(gateway.smtp_port)  # a slot is free again
    await again.close()
    await held[1].close()


async def test_garbage_gets_bounded_500_replies_then_421(start_gateway: Start) -> None:
    gateway = await start_gateway()
    session = await RawSession.open(gateway.smtp_port)
    replies = [await session.command(b"\x00\xff\xfegarbage") for _ in range(11)]
    assert all(r.startswith("500") for r in replies[:10])
    assert replies[10].startswith("421 4.7.0")
    assert await session.reader.read() == b""
    await session.close()


async def test_auth_is_not_offered_after_starttls(start_gateway: Start, tmp_path: Path) -> None:
    self_signed_context(tmp_path)
    gateway = await start_gateway(
        smtp={"tls_cert": str(tmp_path / "cert.pem"), "tls_key": str(tmp_path / "key.pem")}
    )
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1", port=gateway.smtp_port, start_tls=True, validate_certs=False
    ) as client:
        assert not client.supports_extension("auth")
        code, _ = await client.execute_command(b"AUTH", b"PLAIN", b"AGZvbwBiYXI=")
        assert code == 502  # a clear "not here", not a 535 that invites password guessing
