"""Where a domain's mail goes: the customer's configured server, else its MX (RFC 5321 5.1)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

SMTP_PORT = 25
"""The port of MX hosts unless ``Router(mx_port=...)`` says otherwise (tests: a loopback sink)."""


class RoutingError(Exception):
    """No server to hand a domain's mail to; the subclass says whether to retry."""


class NoRoute(RoutingError):
    """Permanent: the domain does not exist, is not a valid name, or refuses mail (null MX)."""


class RouteUnavailable(RoutingError):
    """Temporary: DNS timed out or failed (SERVFAIL...); try again later."""


@dataclass(frozen=True)
class Route:
    """One SMTP server to try; ``host`` is a name or an address, resolved when connecting."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _domain_key(domain: str) -> str:
    return domain.lower().rstrip(".")


class Router:
    """Answers "which servers, in which order" for a recipient domain.

    A configured downstream wins (the customer told us where its server is);
    otherwise DNS decides. ``resolver`` is injected so tests can point it at a
    loopback server; by default the system's resolver configuration is used.
    ``rand`` orders MX hosts of equal preference, which RFC 5321 5.1 asks to
    be randomised so their load is shared. ``mx_port`` is 25 but in tests,
    where the MX of a foreign domain is a loopback sink.
    """

    def __init__(
        self,
        downstreams: Mapping[str, tuple[str, int]],
        resolver: dns.asyncresolver.Resolver | None = None,
        *,
        rand: Callable[[], float] = random.random,
        mx_port: int = SMTP_PORT,
    ) -> None:
        self._downstreams = {
            _domain_key(domain): Route(host, port) for domain, (host, port) in downstreams.items()
        }
        self._resolver = resolver if resolver is not None else dns.asyncresolver.Resolver()
        self._rand = rand
        self._mx_port = mx_port

    async def routes(self, domain: str) -> list[Route]:
        """The servers to try for ``domain``, best first; raises NoRoute or RouteUnavailable."""
        key = _domain_key(domain)
        if key in self._downstreams:
            return [self._downstreams[key]]
        try:
            name = dns.name.from_text(key)
        except dns.exception.DNSException as exc:  # empty or over-long labels, bad IDNA
            raise NoRoute(f"{domain!r} is not a valid domain name: {exc}") from exc
        answer = await self._lookup(name, dns.rdatatype.MX)
        if answer is None:
            # Implicit MX (RFC 5321 5.1): no MX records, but an address record
            # makes the domain itself the mail host.
            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                if await self._lookup(name, rdtype) is not None:
                    return [Route(key, self._mx_port)]
            raise NoRoute(f"{key}: no MX and no address records")
        # Names first, so the order depends on ``rand`` alone, not on the answer's order.
        by_name = sorted(answer, key=lambda mx: mx.exchange)
        records = sorted(by_name, key=lambda mx: (mx.preference, self._rand()))
        # A null MX (RFC 7505) names the root: the domain accepts no mail.
        routes = [
            Route(mx.exchange.to_text(omit_final_dot=True), self._mx_port)
            for mx in records
            if mx.exchange != dns.name.root
        ]
        if not routes:
            raise NoRoute(f"{key}: null MX, the domain accepts no mail (RFC 7505)")
        return routes

    async def _lookup(
        self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> dns.resolver.Answer | None:
        """The answer, or None when the name exists without records of this type."""
        try:
            return await self._resolver.resolve(name, rdtype)
        except dns.resolver.NoAnswer:
            return None
        except (dns.resolver.NXDOMAIN, dns.resolver.YXDOMAIN) as exc:
            raise NoRoute(f"{name.to_text(omit_final_dot=True)}: no such domain") from exc
        except dns.exception.DNSException as exc:  # timeout, SERVFAIL, REFUSED: try later
            raise RouteUnavailable(
                f"{name.to_text(omit_final_dot=True)}: DNS lookup of "
                f"{dns.rdatatype.to_text(rdtype)} failed: {exc}"
            ) from exc
