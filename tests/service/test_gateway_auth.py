"""SPF, DKIM and DMARC in the running gateway: facts gathered with the block lists, a named
hit for a forged sender, and the Authentication-Results header on delivered mail."""

from __future__ import annotations

import email
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.app import Gateway
from tests.dnsserver import DnsServer
from tests.service.gatewayfixtures import POLICY, gateway_config, message, send
from tests.smtpsink import RecordingSink


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    with DnsServer(origin="test") as server:
        server.add_txt("sender.test", "v=spf1 ip4:127.0.0.1 -all")
        server.add_txt("forged.test", "v=spf1 ip4:192.0.2.7 -all")
        server.add_txt("_dmarc.forged.test", "v=DMARC1; p=reject")
        yield server


def _policy(tmp_path: Path, server: DnsServer) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(
        POLICY
        + f"""
[dns]
nameservers = ["127.0.0.1"]
port = {server.port}
timeout = 2.0

[auth]
enabled = true
authserv_id = "mx.mailmoat.test"
"""
    )
    return path


async def test_delivered_mail_says_how_its_sender_authenticated(
    tmp_path: Path, sink: RecordingSink, dns_server: DnsServer
) -> None:
    policy = _policy(tmp_path, dns_server)
    gateway = Gateway(gateway_config(tmp_path, sink.port, filter={"policy": str(policy)}))
    await gateway.start()
    try:
        await send(gateway.smtp_port, message())
        forged = message(subject="Invoice", sender="billing@forged.test")
        await send(gateway.smtp_port, forged, sender="billing@forged.test")
        received = await sink.wait_for(2, timeout=20)
    finally:
        await gateway.stop()
    by_subject = {email.message_from_bytes(r.data)["Subject"]: r.data for r in received}
    good = email.message_from_bytes(by_subject["Quarterly planning"])
    assert good["Authentication-Results"].startswith("mx.mailmoat.test; spf=pass")
    bad = email.message_from_bytes(by_subject["Invoice"])
    assert "spf=fail" in bad["Authentication-Results"]
    assert "dmarc=fail" in bad["Authentication-Results"]
    assert "DMARC_REJECT" in bad["X-Mailmoat-Symbols"]
