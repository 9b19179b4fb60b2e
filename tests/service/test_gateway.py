"""The gateway over real loopback SMTP: a real client in, a recording server downstream."""

from __future__ import annotations

import asyncio
import email
from pathlib import Path

import aiosmtplib
import httpx
import pytest

from quarantine import tokens
from tests.service.conftest import Start
from tests.service.gatewayfixtures import (
    RawSession,
    eventually,
    message,
    rows,
    send,
)
from tests.smtpsink import RecordingSink, self_signed_context

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


async def test_accepts_filters_and_delivers_with_trace_headers(
    start_gateway: Start, sink: RecordingSink
) -> None:
    gateway = await start_gateway()
    _, reply = await send(gateway.smtp_port, message())
    assert reply.startswith("2.0.0 Ok: queued as ")
    queue_id = reply.rsplit(" ", 1)[1]
    (got,) = await sink.wait_for(1, timeout=15)
    assert got.rcpt_tos == ("bob@example.test",)
    delivered = email.message_from_bytes(got.data)
    assert delivered["X-Mailmoat-Queue-Id"] == queue_id
    assert delivered["X-Mailmoat-Action"] == "deliver"
    assert "by mx.mailmoat.test (Mailmoat) with ESMTP id " + queue_id in delivered["Received"]
    db = gateway.config.store.path
    await eventually(
        lambda: rows(db, "SELECT count(*) FROM events WHERE delivered_at > 0") == [(1,)]
    )
    assert rows(db, "SELECT outcome, action, domain FROM events") == [
        ("delivered", "deliver", "example.test")
    ]


async def test_open_relay_is_refused(start_gateway: Start, sink: RecordingSink) -> None:
    gateway = await start_gateway()
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await send(gateway.smtp_port, message(), rcpts=("victim@elsewhere.example",))
    assert refused.value.recipients[0].code == 550
    assert "5.7.1 relaying denied" in refused.value.recipients[0].message
    # A mixed transaction keeps the allowed recipient only.
    errors, _ = await send(
        gateway.smtp_port, message(), rcpts=("bob@example.test", "victim@elsewhere.example")
    )
    assert errors["victim@elsewhere.example"][0] == 550
    (got,) = await sink.wait_for(1, timeout=15)
    assert got.rcpt_tos == ("bob@example.test",)


async def test_size_limit_gives_552(start_gateway: Start) -> None:
    gateway = await start_gateway()
    big = message(body="x" * 70 + "\n").as_bytes() + b"y" * 76 * 20_000
    with pytest.raises(aiosmtplib.SMTPResponseException) as err:
        await send(gateway.smtp_port, big)
    assert err.value.code == 552
    session = await RawSession.open(gateway.smtp_port)
    await session.command(b"EHLO client.test")
    assert (await session.command(b"MAIL FROM:<a@sender.test> SIZE=99999999")).startswith("552")
    await session.close()


async def test_recipient_limit_gives_452(start_gateway: Start) -> None:
    gateway = await start_gateway()
    session = await RawSession.open(gateway.smtp_port)
    await session.command(b"EHLO client.test")
    await session.command(b"MAIL FROM:<a@sender.test>")
    replies = [await session.command(f"RCPT TO:<u{i}@example.test>".encode()) for i in range(4)]
    assert [r[:3] for r in replies] == ["250", "250", "250", "452"]
    assert "4.5.3" in replies[3]
    await session.close()


@pytest.mark.parametrize(
    ("commands", "expected"),
    [
        ([b"DATA"], "503"),  # DATA before MAIL and RCPT
        ([b"MAIL FROM:<a@sender.test>", b"DATA"], "503"),  # no recipient
        ([b"RCPT TO:<bob@example.test>"], "503"),  # RCPT before MAIL
        ([b"MAIL FROM:<a@sender.test>", b"MAIL FROM:<b@sender.test>"], "503"),  # nested MAIL
        ([b"RCPT TO:bob"], "503"),
        ([b"BOGUS"], "500"),
        ([b"EHLO"], "501"),
        ([b"x" * 2000], "500"),  # command line far over the limit
        ([b"NOOP"] * 101, "421"),  # per-command limit: a client looping forever is cut off
        ([b"RSET"] * 150, "250"),  # per-message commands may repeat far more often
    ],
)
async def test_bad_sequences_get_standard_replies(
    start_gateway: Start, commands: list[bytes], expected: str
) -> None:
    gateway = await start_gateway()
    session = await RawSession.open(gateway.smtp_port)
    await session.command(b"EHLO client.test")
    for line in commands:
        last = await session.command(line)
    assert last.startswith(expected), last
    await session.close()


async def test_overlong_data_line_is_refused_and_nothing_stored(start_gateway: Start) -> None:
    gateway = await start_gateway()
    session = await RawSession.open(gateway.smtp_port)
    for line in (b"EHLO client.test", b"MAIL FROM:<a@sender.test>", b"RCPT TO:<bob@example.test>"):
        await session.command(line)
    assert (await session.command(b"DATA")).startswith("354")
    reply = await session.command(b"Subject: long\r\n\r\n" + b"z" * 5000 + b"\r\n.")
    assert reply.startswith("500")
    await session.close()
    assert rows(gateway.config.store.path, "SELECT count(*) FROM messages") == [(0,)]


@pytest.mark.parametrize("separator", [b"\n.\n", b"\r.\n", b"\n.\r\n"])
async def test_smuggled_end_of_data_does_not_split_the_message(
    start_gateway: Start, sink: RecordingSink, separator: bytes
) -> None:
    gateway = await start_gateway()
    session = await RawSession.open(gateway.smtp_port)
    for line in (b"EHLO client.test", b"MAIL FROM:<a@sender.test>", b"RCPT TO:<bob@example.test>"):
        await session.command(line)
    await session.command(b"DATA")
    smuggled = (
        b"Subject: outer\r\n\r\nfirst part"
        + separator
        + b"MAIL FROM:<admin@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
        + b"Subject: smuggled\r\n\r\nforged\r\n.\r\n"
    )
    session.writer.write(smuggled)
    reply = await session.reply()
    assert reply.startswith("250")
    await session.command(b"QUIT")
    await session.close()
    (got,) = await sink.wait_for(1, timeout=15)
    assert b"Subject: smuggled" in got.data and got.mail_from == "a@sender.test"
    assert rows(gateway.config.store.path, "SELECT count(*) FROM messages") == [(1,)]


async def test_downstream_down_then_up_delivers_after_retry(
    start_gateway: Start, sink: RecordingSink
) -> None:
    sink.stop()
    gateway = await start_gateway()
    await send(gateway.smtp_port, message())
    db = gateway.config.store.path
    await eventually(lambda: any(a >= 2 for (a,) in rows(db, "SELECT attempts FROM deliveries")))
    assert gateway.outbound.lengths() == {"example.test": 1}
    sink.start()
    (got,) = await sink.wait_for(1, timeout=15)
    assert got.rcpt_tos == ("bob@example.test",)
    await eventually(lambda: rows(db, "SELECT state FROM deliveries") == [("delivered",)])
    assert gateway.outbound.lengths() == {}
    attempts = "mailmoat_delivery_attempts_total"
    example = {"domain": "example.test"}
    sample = gateway.registry.get_sample_value
    assert (sample(attempts, {**example, "result": "deferred", "reason": "connection"}) or 0) >= 1
    assert sample(attempts, {**example, "result": "deferred", "reason": "reply"}) == 0
    assert sample(attempts, {**example, "result": "delivered", "reason": "ok"}) == 1
    # Every store transaction is timed on its writer thread: the spool before the 250 too.
    assert (sample("mailmoat_store_commit_duration_seconds_count", {"op": "spool"}) or 0) >= 1
    assert (sample("mailmoat_store_commit_duration_seconds_count", {"op": "write"}) or 0) >= 1


async def test_permanent_failure_sends_a_dsn(start_gateway: Start, sink: RecordingSink) -> None:
    sink.reply_at_rcpt("550 5.1.1 no such user", ["bob@example.test"])
    gateway = await start_gateway()
    await send(gateway.smtp_port, message())
    (dsn,) = await sink.wait_for(1, timeout=15)
    assert dsn.mail_from == "<>" and dsn.rcpt_tos == ("alice@sender.test",)  # null sender
    report = email.message_from_bytes(dsn.data)
    assert report.get_content_type() == "multipart/report"
    assert b"Final-Recipient: rfc822; bob@example.test" in dsn.data
    assert b"Status: 5.1.1" in dsn.data
    db = gateway.config.store.path
    query = "SELECT kind, state FROM deliveries ORDER BY id"
    await eventually(lambda: rows(db, query) == [("deliver", "bounced"), ("dsn", "delivered")])
    bounced = {"domain": "example.test", "result": "bounced", "reason": "reply"}
    assert gateway.registry.get_sample_value("mailmoat_delivery_attempts_total", bounced) == 1


async def test_a_4xx_reply_is_deferred_with_reason_reply(
    start_gateway: Start, sink: RecordingSink
) -> None:
    sink.reply_at_rcpt("451 4.3.0 try later", ["bob@example.test"])
    gateway = await start_gateway()
    await send(gateway.smtp_port, message())
    deferred = {"domain": "example.test", "result": "deferred", "reason": "reply"}

    def counted() -> bool:
        found = gateway.registry.get_sample_value("mailmoat_delivery_attempts_total", deferred)
        return (found or 0) >= 1

    await eventually(counted)


async def test_spam_bounce_gets_no_dsn(start_gateway: Start, sink: RecordingSink) -> None:
    sink.reply_at_rcpt("550 5.7.1 we do not want it", ["carol@other.test"])
    gateway = await start_gateway()
    spam = message(sender="promo@spammer.example", to="carol@other.test")
    await send(gateway.smtp_port, spam, sender="promo@spammer.example", rcpts=("carol@other.test",))
    db = gateway.config.store.path
    await eventually(lambda: rows(db, "SELECT state FROM deliveries") == [("bounced",)])
    assert rows(db, "SELECT count(*) FROM deliveries WHERE kind = 'dsn'") == [(0,)]


@pytest.mark.parametrize(
    ("sender", "rcpt", "attachment", "outcome", "category"),
    [
        ("x@spammer.example", "bob@example.test", None, "quarantined", "spam"),
        ("alice@sender.test", "bob@example.test", EICAR, "quarantined", "virus"),
        ("x@spammer.example", "carol@other.test", None, "delivered", "spam"),
        ("x@tagged.example", "tagme@example.test", None, "quarantined", "spam"),
    ],
)
async def test_actions_are_carried_out(
    start_gateway: Start,
    sink: RecordingSink,
    sender: str,
    rcpt: str,
    attachment: bytes | None,
    outcome: str,
    category: str,
) -> None:
    gateway = await start_gateway()
    msg = message(sender=sender, to=rcpt)
    if attachment is not None:
        msg.add_attachment(
            attachment, maintype="application", subtype="octet-stream", filename="eicar.com"
        )
    await send(gateway.smtp_port, msg, sender=sender, rcpts=(rcpt,))
    db = gateway.config.store.path
    await eventually(lambda: len(rows(db, "SELECT 1 FROM events")) == 1)
    assert rows(db, "SELECT outcome, category FROM events") == [(outcome, category)]
    if outcome == "quarantined":
        held = rows(db, "SELECT category, domain, rcpt_tos FROM quarantine")
        assert held == [(category, "example.test", f'["{rcpt}"]')]
    else:
        (got,) = await sink.wait_for(1, timeout=15)
        tagged = email.message_from_bytes(got.data)
        assert tagged["Subject"].startswith("[SPAM] ") and tagged["X-Mailmoat-Spam"] == "yes"


async def test_recipients_of_two_domains_are_decided_separately(
    start_gateway: Start, sink: RecordingSink
) -> None:
    gateway = await start_gateway()
    await send(
        gateway.smtp_port,
        message(sender="x@spammer.example"),
        sender="x@spammer.example",
        rcpts=("bob@example.test", "carol@other.test"),
    )
    got = {r.rcpt_tos: r for r in await sink.wait_for(2, timeout=15)}
    # other.test tags and delivers; example.test quarantines, and opens bob's account.
    assert got[("carol@other.test",)].mail_from == "x@spammer.example"
    notice = got[("bob@example.test",)]
    assert notice.mail_from == "<>" and b"Auto-Submitted: auto-generated" in notice.data
    outcomes = rows(gateway.config.store.path, "SELECT domain, outcome FROM events ORDER BY domain")
    assert outcomes == [("example.test", "quarantined"), ("other.test", "delivered")]


async def test_starttls(start_gateway: Start, sink: RecordingSink, tmp_path: Path) -> None:
    self_signed_context(tmp_path)  # writes cert.pem / key.pem
    gateway = await start_gateway(
        smtp={"tls_cert": str(tmp_path / "cert.pem"), "tls_key": str(tmp_path / "key.pem")}
    )
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1", port=gateway.smtp_port, start_tls=True, validate_certs=False
    ) as client:
        assert client.transport is not None
        assert client.transport.get_extra_info("ssl_object") is not None  # upgraded to TLS
        await client.sendmail("alice@sender.test", ["bob@example.test"], message().as_bytes())
    (got,) = await sink.wait_for(1, timeout=15)
    assert got.rcpt_tos == ("bob@example.test",)


async def test_metrics_and_probes_over_http(start_gateway: Start, sink: RecordingSink) -> None:
    gateway = await start_gateway()
    await send(gateway.smtp_port, message())
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await send(gateway.smtp_port, message(), rcpts=("x@elsewhere.example",))
    await sink.wait_for(1, timeout=15)
    base = f"http://127.0.0.1:{gateway.http_port}"
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = (await http.get("/readyz")).json()
        assert ready["checks"] == {"smtp": True, "store": True, "filter": True}

        async def delivered() -> bool:
            text = (await http.get("/metrics")).text
            return 'mailmoat_messages_delivered_total{domain="example.test"} 1.0' in text

        await eventually(delivered)
        text = (await http.get("/metrics")).text
    relay_denied = '{direction="inbound",reason="relay_denied"} 1.0'
    assert "mailmoat_messages_rejected_total" + relay_denied in text
    clean = '{action="deliver",category="clean",direction="inbound"} 1.0'
    assert "mailmoat_verdicts_total" + clean in text
    assert 'mailmoat_queue_messages{domain="example.test"} 0.0' in text
    assert 'mailmoat_end_to_end_duration_seconds_bucket{le="120.0"} 1.0' in text


async def test_big_messages_do_not_stall_small_ones(
    start_gateway: Start, sink: RecordingSink
) -> None:
    """Three 20 MB messages arrive while small ones keep being accepted and filtered."""
    gateway = await start_gateway(
        smtp={"max_message_size": 64 * 1024 * 1024}, filter={"processes": 1}
    )
    line = b"QmlnIGF0dGFjaG1lbnQgZGF0YSBnb2VzIGhlcmUgYW5kIGhlcmUgYW5kIGhlcmUgYW5kIGhlcmUu\r\n"
    big = message(subject="big").as_bytes().replace(b"\n", b"\r\n") + line * (
        20_000_000 // len(line)
    )
    bigs_done = 0
    small_during_bigs = 0

    async def send_big() -> None:
        nonlocal bigs_done
        await send(gateway.smtp_port, big)
        bigs_done += 1

    big_tasks = [asyncio.create_task(send_big()) for _ in range(3)]
    for i in range(300):  # bounded: the bigs finish long before this runs out
        if bigs_done == 3:
            break
        await send(gateway.smtp_port, message(subject=f"small {i}"))
        small_during_bigs += 1 if bigs_done < 3 else 0
    await asyncio.gather(*big_tasks)
    assert small_during_bigs >= 3
    await sink.wait_for(3 + small_during_bigs, timeout=120)


async def test_promtool_accepts_the_gateways_metrics(
    start_gateway: Start, sink: RecordingSink, promtool: str
) -> None:
    gateway = await start_gateway()
    await send(gateway.smtp_port, message())
    await sink.wait_for(1, timeout=15)
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{gateway.http_port}/metrics")).text
    assert "mailmoat_sla_" in text and "mailmoat_queue_messages" in text
    check = await asyncio.create_subprocess_exec(
        promtool, "check", "metrics", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await check.communicate(text.encode())
    assert check.returncode == 0, out.decode()


async def test_the_running_gateway_holds_tickets_to_the_configured_helpdesk_table(
    start_gateway: Start,
) -> None:
    gateway = await start_gateway(
        sla={"helpdesk_table": "mithi-priority", "helpdesk_plans": {"other.test": "telstra"}}
    )
    _, token = gateway.store.write(
        tokens.create, name="ops", operator=True, domains=[], now=gateway.clock()
    )
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}") as http:
        s1 = {"domain": "example.test", "priority": "S1", "subject": "all mail bounces"}
        opened = await http.post("/sla/tickets", json=s1, headers=auth)
        assert opened.status_code == 201, opened.text
        refused = await http.post("/sla/tickets", json=s1 | {"domain": "other.test"}, headers=auth)
        assert refused.status_code == 422 and "table telstra has" in refused.json()["detail"]
