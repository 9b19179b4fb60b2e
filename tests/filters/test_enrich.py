"""Enrichment: the facts a message gets from the configured block lists, before any decision."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from filters.dnsbl import DnsblClient
from filters.enrich import enrich
from filters.facts import Facts, LookupStatus
from filters.policy import DnsConfig, parse_policy
from tests.dnsserver import DnsServer
from tests.mailfactory import make_mail


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


def client(server: DnsServer) -> DnsblClient:
    return DnsblClient(DnsConfig(nameservers=["127.0.0.1"], port=server.port))


async def test_enrich_asks_ip_and_domain_zones(dns_server: DnsServer) -> None:
    dns_server.add("10.2.0.192.bl.test", "127.0.0.2")
    dns_server.add("spam.example.uri.test", "127.0.0.3")
    config = parse_policy({"dnsbl": [{"zone": "bl.test"}, {"zone": "uri.test", "kind": "domain"}]})
    mail = make_mail("Cheap pills at https://www.spam.example/buy now", client_ip="192.0.2.10")
    facts = await enrich(mail, config, client(dns_server))
    assert {(r.zone, r.subject, r.status) for r in facts.dnsbl} == {
        ("bl.test", "192.0.2.10", LookupStatus.LISTED),
        ("uri.test", "spam.example", LookupStatus.LISTED),
        ("uri.test", "www.spam.example", LookupStatus.NOT_LISTED),
    }


async def test_enrich_without_zones_asks_nothing(dns_server: DnsServer) -> None:
    facts = await enrich(make_mail(), parse_policy({}), client(dns_server))
    assert facts == Facts()
    assert dns_server.queries() == 0


async def test_ip_zones_only_leave_body_domains_alone(dns_server: DnsServer) -> None:
    config = parse_policy({"dnsbl": [{"zone": "bl.test"}]})
    mail = make_mail("See https://www.spam.example/", client_ip="192.0.2.10")
    facts = await enrich(mail, config, client(dns_server))
    assert [r.query for r in facts.dnsbl] == ["10.2.0.192.bl.test"]
    assert "domains" not in vars(mail)  # the URL scan never ran
