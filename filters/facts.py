"""Facts: the plain results of the lookups that need I/O, gathered before deciding.

The pipeline never resolves a name or opens a socket; the enrichment step
fills a ``Facts`` value, and ``evaluate`` reads it. Replay and tests build
``Facts`` by hand.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from filters.lists import DomainLists


class LookupStatus(enum.StrEnum):
    """How a single DNS block-list query ended."""

    LISTED = "listed"
    NOT_LISTED = "not_listed"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class DnsblResult:
    """One block-list query: which zone, what was asked, what came back.

    ``codes`` holds the A records returned (e.g. ``127.0.0.2``) when listed;
    ``detail`` explains an error (SERVFAIL, NXDOMAIN on the zone itself...).
    """

    zone: str
    subject: str
    query: str
    status: LookupStatus
    codes: tuple[str, ...] = ()
    detail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class AuthResults:
    """SPF, DKIM and DMARC results for one message (RFC 8601 result words).

    ``dkim_domain`` is the first signature's ``d=``; ``dmarc_policy`` the From
    domain's published ``p=`` ('' when none); ``header`` the value of the
    ``Authentication-Results`` header the gateway adds.
    """

    spf: str = "none"
    dkim: str = "none"
    dkim_domain: str = ""
    dmarc: str = "none"
    dmarc_policy: str = ""
    header: str = ""


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the pipeline knows about a message beyond its bytes.

    ``lists`` holds sender-list entries customers added at run time, per
    domain; the configured lists come with the policy. ``auth`` is None when
    authentication was not checked.
    """

    dnsbl: tuple[DnsblResult, ...] = ()
    lists: Mapping[str, DomainLists] = field(default_factory=dict)
    auth: AuthResults | None = None


NO_FACTS = Facts()
