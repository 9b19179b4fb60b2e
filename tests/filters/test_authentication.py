"""SPF, DKIM and DMARC as facts, against the loopback DNS server, and the hits they become."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dkim
import pytest

from filters.antivirus import VirusDatabase
from filters.authentication import check_all, make_lookup
from filters.dnsbl import DnsblClient
from filters.enrich import enrich
from filters.facts import NO_FACTS, Facts
from filters.mail import Envelope, Mail
from filters.pipeline import evaluate
from filters.policy import PolicyConfig, parse_policy
from filters.runtime import Policy
from filters.signatures import SignatureDatabase
from tests.dnsserver import DnsServer

DATA = Path(__file__).resolve().parent / "data"
GOOD_IP, BAD_IP = "192.0.2.10", "198.51.100.9"
BODY = b"From: Alice <alice@sender.example>\r\nTo: bob@example.test\r\nSubject: hi\r\n"
BODY += b"Date: Tue, 24 Nov 2026 09:00:00 +0000\r\nMessage-ID: <1@sender.example>\r\n\r\nhello\r\n"


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    with DnsServer(origin="example") as server:
        key = (DATA / "dkim-test.pub").read_text().strip()
        server.add_txt("sender.example", f"v=spf1 ip4:{GOOD_IP} -all")
        server.add_txt("sel._domainkey.sender.example", f"v=DKIM1; k=rsa; p={key}")
        server.add_txt("_dmarc.sender.example", "v=DMARC1; p=reject")
        yield server


def _config(server: DnsServer, **auth: object) -> PolicyConfig:
    return parse_policy(
        {
            "dns": {"nameservers": ["127.0.0.1"], "port": server.port, "timeout": 1.0},
            "auth": {"enabled": True, **auth},
        }
    )


def signed(raw: bytes = BODY) -> bytes:
    key = (DATA / "dkim-test.key").read_bytes()
    return (
        dkim.sign(raw, b"sel", b"sender.example", key, include_headers=[b"from", b"subject"]) + raw
    )


def mail(raw: bytes, ip: str, mail_from: str = "alice@sender.example") -> Mail:
    envelope = Envelope(client_ip=ip, helo="mx.sender.example", mail_from=mail_from,
                        rcpt_tos=("bob@example.test",))  # fmt: skip
    return Mail(raw, envelope)


def test_signed_mail_from_an_allowed_host_passes_everything(dns_server: DnsServer) -> None:
    config = _config(dns_server)
    found = check_all(mail(signed(), GOOD_IP), config.auth, make_lookup(config.dns))
    assert (found.spf, found.dkim, found.dkim_domain, found.dmarc) == (
        "pass", "pass", "sender.example", "pass",
    )  # fmt: skip
    assert found.header.startswith("mailmoat;")
    assert "spf=pass" in found.header and "dkim=pass" in found.header
    assert "dmarc=pass" in found.header


def test_forged_sender_fails_dmarc_with_its_reject_policy(dns_server: DnsServer) -> None:
    config = _config(dns_server)
    found = check_all(mail(BODY, BAD_IP), config.auth, make_lookup(config.dns))
    assert (found.spf, found.dkim, found.dmarc, found.dmarc_policy) == (
        "fail", "none", "fail", "reject",
    )  # fmt: skip


def test_a_changed_body_breaks_the_signature(dns_server: DnsServer) -> None:
    config = _config(dns_server)
    tampered = signed().replace(b"hello", b"hullo")
    found = check_all(mail(tampered, GOOD_IP), config.auth, make_lookup(config.dns))
    assert found.dkim == "fail" and found.dmarc == "pass"  # SPF still aligns


def test_unanswered_spf_lookup_is_a_temporary_error(dns_server: DnsServer) -> None:
    dns_server.silent.add("sender.example")
    config = parse_policy(
        {"dns": {"nameservers": ["127.0.0.1"], "port": dns_server.port, "timeout": 0.2}}
    )
    found = check_all(mail(BODY, GOOD_IP), config.auth, make_lookup(config.dns))
    assert found.spf == "temperror"


def _policy(config: PolicyConfig) -> Policy:
    return Policy(config, VirusDatabase.builtin(), SignatureDatabase.empty(), None)


async def test_enrich_gathers_auth_facts_and_the_pipeline_scores_them(
    dns_server: DnsServer,
) -> None:
    config = _config(dns_server)
    forged = mail(BODY, BAD_IP)
    facts = await enrich(forged, config, DnsblClient(config.dns), make_lookup(config.dns))
    assert facts.auth is not None and facts.auth.dmarc == "fail"
    verdict = evaluate(forged, facts, _policy(config))
    scores = {h.symbol: h.score for h in verdict.hits}
    assert scores["DMARC_REJECT"] == 6.0 and scores["SPF_FAIL"] == 1.0
    assert verdict.score == 7.0 and verdict.action.label == "quarantine"
    (name, value), = verdict.headers  # fmt: skip
    assert name == "Authentication-Results" and "dmarc=fail" in value


async def test_dkim_of_a_trusted_domain_lowers_the_score(dns_server: DnsServer) -> None:
    config = _config(dns_server, trusted_domains=["sender.example"])
    good = mail(signed(), GOOD_IP)
    facts = await enrich(good, config, DnsblClient(config.dns), make_lookup(config.dns))
    verdict = evaluate(good, facts, _policy(config))
    assert [h.symbol for h in verdict.hits] == ["DKIM_TRUSTED"] and verdict.score == -5.0


async def test_disabled_or_without_lookup_there_are_no_auth_facts(dns_server: DnsServer) -> None:
    config = _config(dns_server)
    assert (await enrich(mail(BODY, BAD_IP), config, DnsblClient(config.dns))).auth is None
    off = parse_policy({"dns": {"nameservers": ["127.0.0.1"], "port": dns_server.port}})
    facts = await enrich(mail(BODY, BAD_IP), off, DnsblClient(off.dns), make_lookup(off.dns))
    assert facts == Facts() and dns_server.queries() == 0
    assert evaluate(mail(BODY, BAD_IP), NO_FACTS, _policy(off)).headers == ()
