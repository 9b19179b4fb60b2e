"""DNS block lists: ask them concurrently, cache their answers, and turn listings into hits.

Lookups are the I/O edge (``DnsblClient.lookup`` gives plain ``DnsblResult``
facts); ``dnsbl_hits`` is the pure half the blacklist stage calls.

Failure policy: a lookup that times out or fails (SERVFAIL, REFUSED, no usable
nameserver, a name too long to ask) never blocks, rejects or defers mail. It
becomes an informational hit, ``DNSBL_TIMEOUT`` or ``DNSBL_ERROR`` (stage
blacklist, score 0, action deliver), one per zone and kind of failure, naming
the zone and the names that could not be checked, so the verdict says which
list was not consulted. Failures are never cached: the next message asks again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.resolver

from filters.facts import DnsblResult, LookupStatus
from filters.policy import DnsblZone, DnsConfig
from filters.verdict import Action, Hit, Stage

MAX_DOMAINS_PER_MESSAGE = 20
"""Names looked up per domain zone and message, so hostile mail cannot cause a query storm."""

_LISTING_NET = ipaddress.IPv4Network("127.0.0.0/8")
# Letters, digits, hyphens and the underscores browsers accept; the last label
# must start with a letter, which leaves out IP literals such as http://192.0.2.1/.
_HOSTNAME = re.compile(
    r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
)


def reversed_ip(client_ip: str | None) -> tuple[str, str] | None:
    """``(address, reversed labels)`` as DNSBLs expect them, or None for a missing/bad IP.

    IPv4 ``192.0.2.1`` gives ``1.2.0.192``; IPv6 gives its 32 nibbles reversed. An
    IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, from dual-stack listeners) is
    looked up as the IPv4 address it carries.
    """
    try:
        address = ipaddress.ip_address((client_ip or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    labels = address.reverse_pointer.removesuffix(".in-addr.arpa").removesuffix(".ip6.arpa")
    return str(address), labels


def _hostname(host: str) -> str | None:
    """A body host name as ASCII (IDNA) text, or None when it cannot be a listed domain."""
    try:
        name = dns.name.from_text(host.strip().strip(".").lower()).to_text(omit_final_dot=True)
    except dns.exception.DNSException:  # empty or over-long labels, bad IDNA: hostile input
        return None
    return name if _HOSTNAME.fullmatch(name) else None


def domain_names(hosts: Sequence[str]) -> tuple[str, ...]:
    """The names to look up in domain zones: registered domains first, then full hosts.

    The registered domain is approximated by the last two labels: right for
    ``www.spam.example`` (``spam.example``), wrong for public suffixes of two
    labels (``www.spam.co.uk`` gives ``co.uk``, which no list holds; the full
    host is still asked). Registered domains go first so that many decoy hosts
    under one domain cannot push it past the cap of ``MAX_DOMAINS_PER_MESSAGE``.
    """
    hostnames = [name for name in map(_hostname, hosts) if name is not None]
    parents = (".".join(name.split(".")[-2:]) for name in hostnames)
    return tuple(dict.fromkeys([*parents, *hostnames]))[:MAX_DOMAINS_PER_MESSAGE]


@dataclass(frozen=True, slots=True)
class _Entry:
    expires: float
    status: LookupStatus
    codes: tuple[str, ...]


class _TtlCache:
    """Answers by query name, kept for their TTL (capped), least recently used evicted first.

    dnspython's LRUCache does cache NXDOMAIN, but it reads ``time.time()`` (tests
    could not move its clock) and has no TTL cap, hence this small one.
    """

    def __init__(self, size: int, max_ttl: float, clock: Callable[[], float]) -> None:
        self._size = size
        self._max_ttl = max_ttl
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, qname: str) -> _Entry | None:
        entry = self._entries.get(qname)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            del self._entries[qname]
            return None
        self._entries.move_to_end(qname)
        return entry

    def put(self, qname: str, status: LookupStatus, codes: tuple[str, ...], ttl: float) -> None:
        ttl = min(ttl, self._max_ttl)
        if self._size == 0 or ttl <= 0:
            return
        self._entries[qname] = _Entry(self._clock() + ttl, status, codes)
        self._entries.move_to_end(qname)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


def _negative_ttl(exc: dns.resolver.NXDOMAIN) -> float:
    """RFC 2308 negative TTL (SOA TTL and minimum) of an NXDOMAIN; dnspython's 300 s without SOA."""
    responses: dict[dns.name.Name, dns.message.QueryMessage] = exc.kwargs["responses"]
    return min((r.resolve_chaining().minimum_ttl for r in responses.values()), default=0)


class DnsblClient:
    """Asks DNS block lists about a message's client IP and URL domains, with a TTL cache."""

    def __init__(self, config: DnsConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        if config.nameservers:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = list(config.nameservers)
        else:
            self._resolver = dns.asyncresolver.Resolver()
        self._resolver.port = config.port
        self._resolver.lifetime = config.timeout
        self._timeout = config.timeout
        self._cache = _TtlCache(config.cache_size, config.cache_max_ttl, clock)

    async def lookup(
        self, zones: Sequence[DnsblZone], client_ip: str | None, domains: Sequence[str]
    ) -> tuple[DnsblResult, ...]:
        """Query every zone about the client IP or the domains, all at once."""
        address = reversed_ip(client_ip)
        names = domain_names(domains) if any(z.kind == "domain" for z in zones) else ()
        jobs: dict[str, tuple[str, str]] = {}  # query name -> (zone, subject)
        for zone in zones:
            suffix = zone.zone.strip(".").lower()
            if zone.kind == "ip":
                subjects = [address] if address is not None else []
            else:
                subjects = [(name, name) for name in names]
            for subject, labels in subjects:
                jobs.setdefault(f"{labels}.{suffix}", (zone.zone, subject))
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._query(z, s, q)) for q, (z, s) in jobs.items()]
        return tuple(task.result() for task in tasks)

    async def _query(self, zone: str, subject: str, qname: str) -> DnsblResult:
        start = time.perf_counter()
        cached = self._cache.get(qname)
        if cached is not None:
            status, codes, detail = cached.status, cached.codes, "cached"
        else:
            status, codes, detail = await self._resolve(qname)
        seconds = time.perf_counter() - start
        return DnsblResult(zone, subject, qname, status, codes, detail, seconds)

    async def _resolve(self, qname: str) -> tuple[LookupStatus, tuple[str, ...], str]:
        try:
            # dnspython checks its lifetime between attempts; this also bounds its back-off.
            async with asyncio.timeout(self._timeout):
                answer = await self._resolver.resolve(
                    dns.name.from_text(qname), "A", search=False, raise_on_no_answer=False
                )
        except dns.resolver.NXDOMAIN as exc:
            self._cache.put(qname, LookupStatus.NOT_LISTED, (), _negative_ttl(exc))
            return LookupStatus.NOT_LISTED, (), "NXDOMAIN"
        except (TimeoutError, dns.exception.Timeout):
            return LookupStatus.TIMEOUT, (), f"no answer within {self._timeout:g} s"
        except dns.exception.DNSException as exc:  # SERVFAIL, REFUSED, name too long...
            return LookupStatus.ERROR, (), str(exc) or type(exc).__name__
        ttl = answer.chaining_result.minimum_ttl
        if answer.rrset is None:
            self._cache.put(qname, LookupStatus.NOT_LISTED, (), ttl)
            return LookupStatus.NOT_LISTED, (), "no A record"
        codes = tuple(dict.fromkeys(rdata.to_text() for rdata in answer.rrset))
        self._cache.put(qname, LookupStatus.LISTED, codes, ttl)
        return LookupStatus.LISTED, codes, ""


def _listing_hit(result: DnsblResult, zone: DnsblZone, default_action: Action) -> Hit | None:
    """The hit for a listed result, or None when none of its answers counts."""
    counted = []
    for code in dict.fromkeys(result.codes):
        try:
            in_range = ipaddress.IPv4Address(code) in _LISTING_NET
        except ValueError:
            continue
        if in_range and (not zone.codes or code in zone.codes):
            counted.append(f"{code}: {zone.codes[code]}" if zone.codes else code)
    if not counted:
        return None
    if zone.kind == "ip":
        symbol, what = "BLACKLIST_DNSBL", "client"
    else:
        symbol, what = "BLACKLIST_URIBL", "domain"
    return Hit(
        symbol,
        Stage.BLACKLIST,
        f"{what} {result.subject} listed in {zone.zone} ({', '.join(counted)})",
        zone.score,
        zone.action or default_action,
    )


_FAILURE_SYMBOLS = {LookupStatus.TIMEOUT: "DNSBL_TIMEOUT", LookupStatus.ERROR: "DNSBL_ERROR"}


def dnsbl_hits(
    results: Sequence[DnsblResult], zones: Sequence[DnsblZone], default_action: Action
) -> tuple[Hit, ...]:
    """Hits for block-list results: one per zone and listed subject, one per zone that failed.

    Only answers in 127.0.0.0/8 count (anything else is a wildcard or a broken
    list); when the zone maps return codes, only those codes count. Results of
    zones no longer configured are ignored, so replaying old facts follows the
    current policy.
    """
    by_zone = {zone.zone: zone for zone in zones}
    listed: dict[tuple[str, str], Hit] = {}
    failed: dict[tuple[str, LookupStatus], list[DnsblResult]] = {}
    for result in results:
        zone = by_zone.get(result.zone)
        if zone is None:
            continue
        if result.status is LookupStatus.LISTED:
            hit = _listing_hit(result, zone, default_action)
            if hit is not None:
                listed.setdefault((result.zone, result.subject), hit)
        elif result.status in _FAILURE_SYMBOLS:
            failed.setdefault((result.zone, result.status), []).append(result)
    failures = []
    for (zone_name, status), group in failed.items():
        subjects = ", ".join(dict.fromkeys(r.subject for r in group))
        reason = f"{zone_name} not consulted for {subjects}: {status} ({group[0].detail})"
        failures.append(Hit(_FAILURE_SYMBOLS[status], Stage.BLACKLIST, reason))
    return (*listed.values(), *failures)
