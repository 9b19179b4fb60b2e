"""The submission listener over loopback: STARTTLS, AUTH, own-domain senders, rate limits on
virtual time, outbound filtering, MX delivery to a sink, and no open relay without AUTH."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import dns.asyncresolver
import pytest
from prometheus_client import CollectorRegistry

from loadtest.relaytest import relay_probes, run_relay_test
from service.app import Gateway
from service.config import ConfigError, GatewayConfig, load_config
from slamonitor.events import load_events
from slamonitor.periods import Month
from store import submission_users
from store.store import Store
from tests.dnsserver import MxDnsServer
from tests.service.gatewayfixtures import RawSession, eventually, gateway_config, message, rows
from tests.smtpsink import RecordingSink, self_signed_context, started_sink

PASSWORD = "correct horse battery"
USER = "alice@sender.test"
START = 1_795_000_000.0
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@dataclass
class Outbound:
    """A gateway with a submission listener, its virtual clock and the foreign MX sink."""

    gateway: Gateway
    mx: RecordingSink
    sink: RecordingSink
    now: list[float]
    registry: CollectorRegistry

    @property
    def port(self) -> int:
        return self.gateway.submission_port

    @property
    def db(self) -> Path:
        return self.gateway.config.store.path

    def advance(self, seconds: float) -> None:
        self.now[0] += seconds

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


@pytest.fixture
def dns_server() -> Iterator[MxDnsServer]:
    server = MxDnsServer()
    with server:
        yield server


@pytest.fixture
async def mx_sink() -> AsyncIterator[RecordingSink]:
    """The recipient domain's MX host: a second sink, on its own ephemeral port."""
    server = started_sink()
    yield server
    server.stop()


def submission_config(tmp_path: Path, sink: RecordingSink, mx: RecordingSink) -> GatewayConfig:
    self_signed_context(tmp_path)  # writes cert.pem / key.pem
    return gateway_config(
        tmp_path,
        sink.port,
        smtp={"tls_cert": str(tmp_path / "cert.pem"), "tls_key": str(tmp_path / "key.pem")},
        submission={"port": 0, "messages_per_minute": 3, "recipients_per_hour": 6},
        delivery={"mx_port": mx.port},
        # "both": outbound, the sender alone is told all the same (SPEC 3).
        domains={"sender.test": {"downstream": f"127.0.0.1:{sink.port}", "virus_alerts": "both"}},
    )


@pytest.fixture
async def outbound(
    tmp_path: Path, sink: RecordingSink, mx_sink: RecordingSink, dns_server: MxDnsServer
) -> AsyncIterator[Outbound]:
    config = submission_config(tmp_path, sink, mx_sink)
    store = Store(config.store.path)
    store.write(submission_users.add, "sender.test", USER,
                submission_users.hash_password(PASSWORD), START)  # fmt: skip
    store.close()
    dns_server.add_mx("foreign.test", "10 localhost.")
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers, resolver.port, resolver.lifetime = ["127.0.0.1"], dns_server.port, 2.0
    now = [START]
    registry = CollectorRegistry()
    gateway = Gateway(config, registry=registry, resolver=resolver, clock=lambda: now[0])
    await gateway.start()
    yield Outbound(gateway, mx_sink, sink, now, registry)
    await gateway.stop()


def client(port: int) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, start_tls=True, validate_certs=False, timeout=30
    )


def outgoing(to: str = "bob@foreign.test", **kwargs: Any) -> bytes:
    return message(sender=USER, to=to, **kwargs).as_bytes()


async def test_a_signed_in_user_sends_anywhere_delivered_by_mx(outbound: Outbound) -> None:
    async with client(outbound.port) as smtp:
        assert smtp.transport is not None
        assert smtp.transport.get_extra_info("ssl_object") is not None  # STARTTLS done
        await smtp.ehlo()
        assert smtp.supports_extension("auth")  # offered once TLS is up
        await smtp.login(USER, PASSWORD)
        errors, reply = await smtp.sendmail(USER, ["bob@foreign.test"], outgoing())
    assert errors == {} and reply.startswith("2.0.0 Ok: queued as")
    (got,) = await outbound.mx.wait_for(1, timeout=15)
    assert got.mail_from == USER and got.rcpt_tos == ("bob@foreign.test",)
    assert b"X-Mailmoat-Action: deliver" in got.data
    assert rows(outbound.db, "SELECT direction FROM messages") == [("outbound",)]
    await eventually(
        lambda: (
            rows(outbound.db, "SELECT domain, direction, delivered_at IS NOT NULL FROM events")
            == [("foreign.test", "outbound", 1)]
        )
    )
    # The service levels are about mail to customers: this event is not among the month's.
    assert len(load_events(outbound.gateway.store.engine, Month.containing(START))) == 0
    assert outbound.metric("mailmoat_messages_accepted_total", direction="outbound") == 1
    assert outbound.metric("mailmoat_messages_accepted_total", direction="inbound") == 0
    verdicts = "mailmoat_verdicts_total"
    labels = {"action": "deliver", "category": "clean", "direction": "outbound"}
    assert outbound.metric(verdicts, **labels) == 1


async def test_wrong_passwords_get_535_then_the_session_is_closed(outbound: Outbound) -> None:
    smtp = client(outbound.port)
    await smtp.connect()
    await smtp.ehlo()
    for attempt in range(2):
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
            await smtp.auth_plain(USER, f"wrong {attempt}")
        assert refused.value.code == 535
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):  # the third failure ends it
        await smtp.auth_plain("nobody@sender.test", PASSWORD)
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await smtp.noop()
    smtp.close()
    labels = {"reason": "auth_failed", "direction": "outbound"}
    assert outbound.metric("mailmoat_messages_rejected_total", **labels) == 3


async def test_auth_login_mechanism_works_too(outbound: Outbound) -> None:
    async with client(outbound.port) as smtp:
        await smtp.ehlo()
        reply = await smtp.auth_login(USER, PASSWORD)
    assert reply.code == 235


async def test_nothing_but_starttls_before_tls(outbound: Outbound) -> None:
    session = await RawSession.open(outbound.port)
    ehlo = await session.command(b"EHLO client.test")
    assert "STARTTLS" in ehlo and "AUTH" not in ehlo  # no AUTH offered on a plain channel
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
    assert (await session.command(b"AUTH PLAIN " + plain)).startswith("530")
    assert (await session.command(b"MAIL FROM:<alice@sender.test>")).startswith("530")
    await session.close()
    labels = {"reason": "tls_required", "direction": "outbound"}
    assert outbound.metric("mailmoat_messages_rejected_total", **labels) == 2


async def test_mail_without_auth_after_starttls_gets_530(outbound: Outbound) -> None:
    async with client(outbound.port) as smtp:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await smtp.mail(USER)
    assert refused.value.code == 530 and "5.7.0 Authentication required" in refused.value.message


@pytest.mark.parametrize("sender", ["mallory@elsewhere.test", "alice@example.test", ""])
async def test_sender_outside_the_users_domain_gets_553(outbound: Outbound, sender: str) -> None:
    async with client(outbound.port) as smtp:
        await smtp.login(USER, PASSWORD)
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await smtp.mail(sender)
    assert refused.value.code == 553
    assert refused.value.message == "5.7.1 Sender address must be in your domain sender.test"


async def test_rate_limits_per_user_on_virtual_time(outbound: Outbound) -> None:
    """3 messages a minute, 6 recipients an hour; the clock is moved, never waited for."""
    async with client(outbound.port) as smtp:
        await smtp.login(USER, PASSWORD)
        for n in range(3):
            await smtp.sendmail(USER, [f"r{n}@foreign.test"], outgoing())
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await smtp.mail(USER)
        assert refused.value.code == 450
        assert refused.value.message.startswith("4.7.1 Sending rate limit: 3 messages a minute")
        outbound.advance(61)
        await smtp.sendmail(USER, ["r3@foreign.test", "r4@foreign.test", "r5@foreign.test"],
                            outgoing())  # fmt: skip
        await smtp.mail(USER)  # a new minute's message, but the hour's recipients are used up
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as over:
            await smtp.rcpt("r6@foreign.test")
        assert over.value.code == 450
        assert over.value.message.startswith("4.7.1 Recipient limit: 6 recipients an hour")
        await smtp.rset()
        outbound.advance(3600)
        await smtp.sendmail(USER, ["r6@foreign.test"], outgoing())
    await outbound.mx.wait_for(5, timeout=15)
    labels = {"reason": "rate_limited", "direction": "outbound"}
    assert outbound.metric("mailmoat_messages_rejected_total", **labels) == 2


async def test_a_virus_in_outbound_mail_is_not_delivered(outbound: Outbound) -> None:
    infected = EmailMessage()
    infected["From"], infected["To"], infected["Subject"] = USER, "bob@foreign.test", "invoice"
    infected.set_content("see attached")
    infected.add_attachment(EICAR, maintype="application", subtype="octet-stream",
                            filename="invoice.com")  # fmt: skip
    async with client(outbound.port) as smtp:
        await smtp.login(USER, PASSWORD)
        await smtp.sendmail(USER, ["bob@foreign.test"], infected.as_bytes())
        await smtp.sendmail(USER, ["carol@foreign.test"], outgoing())  # filtered after it
    (got,) = await outbound.mx.wait_for(1, timeout=15)
    await eventually(lambda: len(rows(outbound.db, "SELECT id FROM events")) == 2)
    assert got.rcpt_tos == ("carol@foreign.test",)  # only the clean one reached the MX
    virus = rows(outbound.db, "SELECT category, direction FROM events WHERE category = 'virus'")
    assert virus == [("virus", "outbound")]
    (alert,) = await outbound.sink.wait_for(1, timeout=15)  # the sender's own server
    assert alert.rcpt_tos == (USER,) and alert.mail_from == "<>"
    assert [r.rcpt_tos for r in outbound.mx.received] == [("carol@foreign.test",)]  # no alert
    assert rows(outbound.db, "SELECT COUNT(*) FROM deliveries WHERE domain = 'foreign.test'") == [
        (1,)
    ]


async def test_no_open_relay_without_auth(outbound: Outbound) -> None:
    """All 16 relay probes (plain SMTP, as `mailmoat relaytest` sends them) are refused."""
    report = await run_relay_test(
        "127.0.0.1", outbound.port, local_domain="sender.test", timeout=10
    )
    assert len(report.outcomes) == len(relay_probes("sender.test")) == 16
    assert not report.control.accepted
    assert [o.probe for o in report.outcomes if o.accepted] == [], report.to_dict()
    assert {o.code for o in report.outcomes} == {530}
    # With TLS but without AUTH, a foreign recipient is refused just the same.
    async with client(outbound.port) as smtp:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await smtp.sendmail("x@foreign.test", ["y@elsewhere.test"], outgoing())
    assert refused.value.code == 530
    assert rows(outbound.db, "SELECT COUNT(*) FROM messages") == [(0,)]


async def test_inbound_port_still_refuses_auth_and_relaying(outbound: Outbound) -> None:
    session = await RawSession.open(outbound.gateway.smtp_port)
    await session.command(b"EHLO client.test")
    assert (await session.command(b"AUTH PLAIN AGFsaWNlAHB3")).startswith("502 5.5.1")
    await session.command(b"MAIL FROM:<alice@sender.test>")
    assert (await session.command(b"RCPT TO:<bob@foreign.test>")).startswith("550 5.7.1")
    await session.close()


def test_a_submission_port_needs_a_certificate(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("[submission]\nport = 587\n")
    with pytest.raises(ConfigError, match=r"submission\.port needs submission\.tls_cert"):
        load_config(path, environ={})
    path.write_text('[submission]\nport = 587\ntls_cert = "c.pem"\ntls_key = "k.pem"\n')
    config = load_config(path, environ={})
    assert config.submission_tls() == (tmp_path / "c.pem", tmp_path / "k.pem")
    assert not load_config(None, environ={}).submission.enabled  # off unless configured
