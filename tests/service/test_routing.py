"""Routing: downstreams, MX order, implicit MX, null MX and DNS failures, on a loopback DNS."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import dns.asyncresolver
import dns.rcode
import dns.rdatatype
import pytest

from service.app import probe_servers
from service.routing import SMTP_PORT, NoRoute, Route, Router, RouteUnavailable, RoutingError
from slamonitor.probe import NoServer
from tests.dnsserver import DnsServer, MxDnsServer


@pytest.fixture
def dns_server() -> Iterator[MxDnsServer]:
    server = MxDnsServer()
    with server:
        yield server


def make_router(
    server: DnsServer,
    downstreams: dict[str, tuple[str, int]] | None = None,
    *,
    rand: Callable[[], float] = lambda: 0.0,
) -> Router:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.port
    resolver.lifetime = 0.5  # only the "silent" test waits this long
    return Router(downstreams or {}, resolver, rand=rand)


async def test_configured_downstream_wins_without_dns(dns_server: MxDnsServer) -> None:
    dns_server.add_mx("example.test", "10 mx.elsewhere.test.")
    router = make_router(dns_server, {"Example.TEST": ("10.0.0.5", 2526)})
    assert await router.routes("example.test.") == [Route("10.0.0.5", 2526)]
    assert await router.routes("EXAMPLE.test") == [Route("10.0.0.5", 2526)]
    assert dns_server.queries() == 0


async def test_mx_hosts_in_preference_order(dns_server: MxDnsServer) -> None:
    dns_server.add_mx(
        "example.test", "20 mx2.example.test.", "30 backup.other.test.", "10 mx1.example.test."
    )
    routes = await make_router(dns_server).routes("example.test")
    assert routes == [
        Route("mx1.example.test", SMTP_PORT),
        Route("mx2.example.test", SMTP_PORT),
        Route("backup.other.test", SMTP_PORT),
    ]


@pytest.mark.parametrize(
    ("draws", "tied"),
    [
        ([0.1, 0.9, 0.5], ["a.example.test", "b.example.test"]),
        ([0.9, 0.1, 0.5], ["b.example.test", "a.example.test"]),
    ],
)
async def test_equal_preferences_are_ordered_by_the_injected_randomness(
    dns_server: MxDnsServer, draws: list[float], tied: list[str]
) -> None:
    dns_server.add_mx("example.test", "10 b.example.test.", "5 first.test.", "10 a.example.test.")
    router = make_router(dns_server, rand=iter(draws).__next__)
    routes = await router.routes("example.test")
    assert [route.host for route in routes] == ["first.test", *tied]


async def test_implicit_mx_is_the_domain_itself(dns_server: MxDnsServer) -> None:
    dns_server.add("plain.test", "192.0.2.25")
    assert await make_router(dns_server).routes("plain.test") == [Route("plain.test", SMTP_PORT)]


async def test_no_mx_and_no_address_is_no_route(dns_server: MxDnsServer) -> None:
    dns_server.nodata.add("empty.test")
    with pytest.raises(NoRoute, match="no MX and no address"):
        await make_router(dns_server).routes("empty.test")


async def test_null_mx_refuses_mail(dns_server: MxDnsServer) -> None:
    dns_server.add_mx("nomail.test", "0 .")
    dns_server.add("nomail.test", "192.0.2.1")  # an address must not revive it
    with pytest.raises(NoRoute, match="null MX"):
        await make_router(dns_server).routes("nomail.test")


async def test_nxdomain_is_no_route(dns_server: MxDnsServer) -> None:
    with pytest.raises(NoRoute, match="no such domain"):
        await make_router(dns_server).routes("missing.test")


async def test_invalid_name_is_no_route_without_a_query(dns_server: MxDnsServer) -> None:
    with pytest.raises(NoRoute, match="not a valid domain name"):
        await make_router(dns_server).routes("bad..name.test")
    assert dns_server.queries() == 0


async def test_dns_timeout_is_temporary(dns_server: MxDnsServer) -> None:
    dns_server.silent.add("slow.test")
    with pytest.raises(RouteUnavailable, match=r"slow\.test"):
        await make_router(dns_server).routes("slow.test")


async def test_servfail_is_temporary(dns_server: MxDnsServer) -> None:
    dns_server.rcodes["broken.test"] = dns.rcode.SERVFAIL
    with pytest.raises(RouteUnavailable):
        await make_router(dns_server).routes("broken.test")


def test_both_failures_share_one_base_class() -> None:
    assert issubclass(NoRoute, RoutingError)
    assert issubclass(RouteUnavailable, RoutingError)
    assert str(Route("mx.example.test", 25)) == "mx.example.test:25"


async def test_the_queue_watch_probes_where_delivery_would_go(dns_server: MxDnsServer) -> None:
    """An MX-routed domain's probe targets are its MX hosts; a DNS that names no server is a
    customer-side DNS fault for the probe (``NoServer``), not a missing route of ours."""
    dns_server.add_mx("example.test", "20 backup.example.test.", "10 mx.example.test.")
    dns_server.add_mx("nomail.test", "0 .")
    servers = probe_servers(make_router(dns_server, {"routed.test": ("10.0.0.5", 2526)}))
    assert await servers("example.test") == [("mx.example.test", 25), ("backup.example.test", 25)]
    assert await servers("routed.test") == [("10.0.0.5", 2526)]
    with pytest.raises(NoServer, match="null MX"):
        await servers("nomail.test")
    with pytest.raises(NoServer, match="no such domain"):
        await servers("missing.test")
