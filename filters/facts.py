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
class Facts:
    """Everything the pipeline knows about a message beyond its bytes.

    ``lists`` holds sender-list entries customers added at run time, per
    domain; the configured lists come with the policy.
    """

    dnsbl: tuple[DnsblResult, ...] = ()
    lists: Mapping[str, DomainLists] = field(default_factory=dict)


NO_FACTS = Facts()
