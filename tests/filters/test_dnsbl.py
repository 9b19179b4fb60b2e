"""DNS block lists: real lookups against a loopback DNS server, and the pure hit rules."""

from __future__ import annotations

from collections.abc import Iterator

import dns.rcode
import pytest

from filters.dnsbl import MAX_DOMAINS_PER_MESSAGE, DnsblClient, dnsbl_hits, domain_names
from filters.facts import DnsblResult, LookupStatus
from filters.policy import DnsblZone, DnsConfig
from filters.verdict import Action, Hit, Stage
from tests.dnsserver import DnsServer

IP_ZONE = DnsblZone(zone="bl.test")
URI_ZONE = DnsblZone(zone="uri.test", kind="domain")
IPV6_NIBBLES = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    with DnsServer(negative_ttl=60) as server:
        yield server


def make_client(
    server: DnsServer,
    clock: FakeClock | None = None,
    *,
    timeout: float = 2.0,
    cache_size: int = 100,
    cache_max_ttl: float = 3600.0,
) -> DnsblClient:
    config = DnsConfig(
        nameservers=["127.0.0.1"],
        port=server.port,
        timeout=timeout,
        cache_size=cache_size,
        cache_max_ttl=cache_max_ttl,
    )
    return DnsblClient(config, clock=clock or FakeClock())


# --- lookups ------------------------------------------------------------------


async def test_listed_client_ip(dns_server: DnsServer) -> None:
    dns_server.add("1.2.0.192.bl.test", "127.0.0.2", "127.0.0.4")
    (result,) = await make_client(dns_server).lookup([IP_ZONE], "192.0.2.1", [])
    assert result.status is LookupStatus.LISTED
    assert (result.zone, result.subject, result.query) == (
        "bl.test",
        "192.0.2.1",
        "1.2.0.192.bl.test",
    )
    assert sorted(result.codes) == ["127.0.0.2", "127.0.0.4"]
    assert result.seconds >= 0


@pytest.mark.parametrize("exists_without_a", [False, True], ids=["nxdomain", "nodata"])
async def test_not_listed(dns_server: DnsServer, exists_without_a: bool) -> None:
    if exists_without_a:
        dns_server.nodata.add("1.2.0.192.bl.test")
    (result,) = await make_client(dns_server).lookup([IP_ZONE], "192.0.2.1", [])
    assert result.status is LookupStatus.NOT_LISTED
    assert result.codes == ()
    assert dnsbl_hits([result], [IP_ZONE], Action.QUARANTINE) == ()


@pytest.mark.parametrize(
    ("client_ip", "subject", "labels"),
    [
        ("127.0.0.2", "127.0.0.2", "2.0.0.127"),
        ("2001:db8::1", "2001:db8::1", IPV6_NIBBLES),
        ("::ffff:192.0.2.1", "192.0.2.1", "1.2.0.192"),
    ],
    ids=["ipv4", "ipv6", "ipv4-mapped"],
)
async def test_ip_query_name(
    dns_server: DnsServer, client_ip: str, subject: str, labels: str
) -> None:
    dns_server.add(f"{labels}.bl.test", "127.0.0.2")
    (result,) = await make_client(dns_server).lookup([IP_ZONE], client_ip, [])
    assert (result.subject, result.query, result.status) == (
        subject,
        f"{labels}.bl.test",
        LookupStatus.LISTED,
    )


@pytest.mark.parametrize("client_ip", [None, "", "not-an-ip", "999.1.1.1"])
async def test_missing_or_invalid_ip_is_not_looked_up(
    dns_server: DnsServer, client_ip: str | None
) -> None:
    assert await make_client(dns_server).lookup([IP_ZONE], client_ip, []) == ()
    assert dns_server.queries() == 0


@pytest.mark.parametrize("listed", ["spam.example", "www.spam.example"], ids=["parent", "host"])
async def test_listed_domain_via_uri_zone(dns_server: DnsServer, listed: str) -> None:
    dns_server.add(f"{listed}.uri.test", "127.0.0.2")
    results = await make_client(dns_server).lookup([URI_ZONE], None, ["www.spam.example"])
    statuses = {r.query: r.status for r in results}
    assert statuses.pop(f"{listed}.uri.test") is LookupStatus.LISTED
    assert list(statuses.values()) == [LookupStatus.NOT_LISTED]
    (hit,) = dnsbl_hits(results, [URI_ZONE], Action.QUARANTINE)
    assert hit.symbol == "BLACKLIST_URIBL"
    assert hit.reason == f"domain {listed} listed in uri.test (127.0.0.2)"


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        (["www.spam.example", "spam.example"], ("spam.example", "www.spam.example")),
        (
            ["a.spam.example", "b.spam.example"],
            ("spam.example", "a.spam.example", "b.spam.example"),
        ),
        (["WWW.Spam.Example."], ("spam.example", "www.spam.example")),
        (["192.0.2.1", "a..b.example", "x" * 64 + ".example"], ()),
        (["bücher.example"], ("xn--bcher-kva.example",)),
    ],
    ids=["dedup", "parents-first", "case-and-dot", "ip-literal-and-invalid", "idna"],
)
def test_domain_names(hosts: list[str], expected: tuple[str, ...]) -> None:
    assert domain_names(hosts) == expected


async def test_domain_cap_limits_queries(dns_server: DnsServer) -> None:
    hosts = [f"www.decoy{i}.example" for i in range(3 * MAX_DOMAINS_PER_MESSAGE)]
    results = await make_client(dns_server).lookup([URI_ZONE], None, hosts)
    assert len(results) == MAX_DOMAINS_PER_MESSAGE
    assert dns_server.queries() == MAX_DOMAINS_PER_MESSAGE
    assert all(r.subject.startswith("decoy") for r in results)  # registered domains first


async def test_zones_are_queried_concurrently(dns_server: DnsServer) -> None:
    zones = [DnsblZone(zone=f"bl{i}.test") for i in range(3)] + [URI_ZONE]
    for i in range(3):
        dns_server.add(f"1.2.0.192.bl{i}.test", "127.0.0.2")
    dns_server.add("spam.example.uri.test", "127.0.0.2")
    # Replies are held until all four queries arrived: one at a time would time out.
    dns_server.hold = 4
    results = await make_client(dns_server).lookup(zones, "192.0.2.1", ["spam.example"])
    assert [r.status for r in results] == [LookupStatus.LISTED] * 4
    assert len(dnsbl_hits(results, zones, Action.QUARANTINE)) == 4


# --- failures -----------------------------------------------------------------


async def test_timeout_is_informational_and_not_cached(dns_server: DnsServer) -> None:
    dns_server.silent.add("1.2.0.192.bl.test")
    client = make_client(dns_server, timeout=0.2)
    (result,) = await client.lookup([IP_ZONE], "192.0.2.1", [])
    assert result.status is LookupStatus.TIMEOUT
    assert dnsbl_hits([result], [IP_ZONE], Action.QUARANTINE) == (
        Hit(
            "DNSBL_TIMEOUT",
            Stage.BLACKLIST,
            "bl.test not consulted for 192.0.2.1: timeout (no answer within 0.2 s)",
            0.0,
            Action.DELIVER,
        ),
    )
    await client.lookup([IP_ZONE], "192.0.2.1", [])
    assert dns_server.wait_for_queries("1.2.0.192.bl.test", 2)


@pytest.mark.parametrize("rcode", [dns.rcode.SERVFAIL, dns.rcode.REFUSED])
async def test_error_rcode_is_informational_and_not_cached(
    dns_server: DnsServer, rcode: dns.rcode.Rcode
) -> None:
    dns_server.rcodes["1.2.0.192.bl.test"] = rcode
    client = make_client(dns_server)
    (result,) = await client.lookup([IP_ZONE], "192.0.2.1", [])
    assert result.status is LookupStatus.ERROR
    assert dns.rcode.to_text(rcode) in result.detail
    (hit,) = dnsbl_hits([result], [IP_ZONE], Action.QUARANTINE)
    assert (hit.symbol, hit.score, hit.action) == ("DNSBL_ERROR", 0.0, Action.DELIVER)
    assert hit.reason.startswith("bl.test not consulted for 192.0.2.1: error")
    await client.lookup([IP_ZONE], "192.0.2.1", [])
    assert dns_server.queries("1.2.0.192.bl.test") == 2


async def test_name_too_long_is_an_error_not_a_crash(dns_server: DnsServer) -> None:
    host = ".".join(["a" * 60] * 4) + ".example"
    results = await make_client(dns_server).lookup([URI_ZONE], None, [host])
    assert [r.status for r in results] == [LookupStatus.NOT_LISTED, LookupStatus.ERROR]


# --- cache --------------------------------------------------------------------


@pytest.mark.parametrize("listed", [True, False], ids=["positive", "negative"])
async def test_cache_serves_repeat_lookup(dns_server: DnsServer, listed: bool) -> None:
    if listed:
        dns_server.add("1.2.0.192.bl.test", "127.0.0.2")
    client = make_client(dns_server)
    first = await client.lookup([IP_ZONE], "192.0.2.1", [])
    second = await client.lookup([IP_ZONE], "192.0.2.1", [])
    assert dns_server.queries("1.2.0.192.bl.test") == 1
    assert (first[0].status, first[0].codes) == (second[0].status, second[0].codes)
    assert second[0].detail == "cached"


@pytest.mark.parametrize(
    ("ttl", "max_ttl", "advance", "queries"),
    [
        (60, 3600.0, 59.0, 1),
        (60, 3600.0, 60.0, 2),
        (3600, 10.0, 11.0, 2),
        (None, 3600.0, 59.0, 1),  # NXDOMAIN: the SOA's negative TTL of 60 s
        (None, 3600.0, 61.0, 2),
    ],
    ids=["fresh", "expired", "capped", "negative-fresh", "negative-expired"],
)
async def test_ttl_expiry_requeries(
    dns_server: DnsServer, ttl: int | None, max_ttl: float, advance: float, queries: int
) -> None:
    if ttl is not None:
        dns_server.add("1.2.0.192.bl.test", "127.0.0.2", ttl=ttl)
    clock = FakeClock()
    client = make_client(dns_server, clock, cache_max_ttl=max_ttl)
    await client.lookup([IP_ZONE], "192.0.2.1", [])
    clock.now += advance
    await client.lookup([IP_ZONE], "192.0.2.1", [])
    assert dns_server.queries("1.2.0.192.bl.test") == queries


@pytest.mark.parametrize(("cache_size", "queries"), [(0, 3), (1, 2), (2, 1)])
async def test_cache_is_bounded(dns_server: DnsServer, cache_size: int, queries: int) -> None:
    client = make_client(dns_server, cache_size=cache_size)
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.1", "192.0.2.1"):
        await client.lookup([IP_ZONE], ip, [])
    assert dns_server.queries("1.2.0.192.bl.test") == queries


# --- hits (pure) --------------------------------------------------------------


def listed(zone: str, subject: str, *codes: str) -> DnsblResult:
    return DnsblResult(zone, subject, f"{subject}.{zone}", LookupStatus.LISTED, codes)


@pytest.mark.parametrize(
    ("meanings", "codes", "explained"),
    [
        ({}, ("127.0.0.2",), "127.0.0.2"),
        ({"127.0.0.2": "spam source"}, ("127.0.0.2",), "127.0.0.2: spam source"),
        (
            {"127.0.0.2": "spam", "127.0.0.4": "exploit"},
            ("127.0.0.4", "127.0.0.2"),
            "127.0.0.4: exploit, 127.0.0.2: spam",
        ),
        ({"127.0.0.2": "spam source"}, ("127.0.0.4",), None),
        ({}, ("127.0.0.2", "192.0.2.5"), "127.0.0.2"),
        ({}, ("10.0.0.2",), None),
        ({}, ("not-an-address",), None),
    ],
    ids=["any", "meaning", "two-meanings", "unmapped-code", "outside-ignored", "outside", "junk"],
)
def test_return_codes(
    meanings: dict[str, str], codes: tuple[str, ...], explained: str | None
) -> None:
    zone = DnsblZone(zone="bl.test", codes=meanings, score=3.5)
    hits = dnsbl_hits([listed("bl.test", "192.0.2.1", *codes)], [zone], Action.QUARANTINE)
    if explained is None:
        assert hits == ()
    else:
        assert hits == (
            Hit(
                "BLACKLIST_DNSBL",
                Stage.BLACKLIST,
                f"client 192.0.2.1 listed in bl.test ({explained})",
                3.5,
                Action.QUARANTINE,
            ),
        )


@pytest.mark.parametrize(
    ("zone_action", "expected"), [(None, Action.TAG_SUBJECT), ("tag_header", Action.TAG_HEADER)]
)
def test_zone_action_overrides_default(zone_action: str | None, expected: Action) -> None:
    zone = DnsblZone.model_validate({"zone": "bl.test", "action": zone_action})
    (hit,) = dnsbl_hits([listed("bl.test", "192.0.2.1", "127.0.0.2")], [zone], Action.TAG_SUBJECT)
    assert hit.action is expected


def test_duplicates_and_unconfigured_zones() -> None:
    result = listed("bl.test", "192.0.2.1", "127.0.0.2")
    gone = listed("old.test", "192.0.2.1", "127.0.0.2")
    assert len(dnsbl_hits([result, result, gone], [IP_ZONE], Action.QUARANTINE)) == 1


def test_failures_give_one_hit_per_zone_and_kind() -> None:
    def failed(subject: str, status: LookupStatus) -> DnsblResult:
        return DnsblResult("uri.test", subject, f"{subject}.uri.test", status, detail="why")

    results = [
        failed("a.example", LookupStatus.TIMEOUT),
        failed("b.example", LookupStatus.TIMEOUT),
        failed("c.example", LookupStatus.ERROR),
    ]
    hits = dnsbl_hits(results, [URI_ZONE], Action.QUARANTINE)
    assert [(h.symbol, h.stage, h.score, h.action) for h in hits] == [
        ("DNSBL_TIMEOUT", Stage.BLACKLIST, 0.0, Action.DELIVER),
        ("DNSBL_ERROR", Stage.BLACKLIST, 0.0, Action.DELIVER),
    ]
    assert hits[0].reason == "uri.test not consulted for a.example, b.example: timeout (why)"
