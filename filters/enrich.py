"""Enrichment: run every lookup that needs I/O up front, so deciding stays a pure function.

The pipeline's ``evaluate(mail, facts, policy)`` opens no socket and reads no
clock; this module is the one place a message's facts are fetched, concurrently
and each under its own timeout. Replay and tests skip it and build ``Facts`` by
hand, which is why the two halves are kept apart.
"""

from __future__ import annotations

import asyncio

from filters.authentication import Lookup, authenticate
from filters.dnsbl import DnsblClient
from filters.facts import AuthResults, DnsblResult, Facts
from filters.mail import Mail
from filters.policy import PolicyConfig


async def enrich(
    mail: Mail, config: PolicyConfig, dnsbl: DnsblClient, lookup: Lookup | None = None
) -> Facts:
    """Gather the facts ``evaluate`` needs: block-list answers and, when enabled and a
    ``lookup`` is given (``authentication.make_lookup``), SPF/DKIM/DMARC, concurrently.

    The body's URLs are only parsed when a domain zone is configured.
    """
    zones = config.dnsbl
    domains = mail.domains if any(zone.kind == "domain" for zone in zones) else ()
    auth: AuthResults | None = None
    results: tuple[DnsblResult, ...] = ()
    async with asyncio.TaskGroup() as group:
        listed = (
            group.create_task(dnsbl.lookup(zones, mail.envelope.client_ip, domains))
            if zones
            else None
        )
        checked = (
            group.create_task(authenticate(mail, config.auth, lookup))
            if config.auth.enabled and lookup is not None
            else None
        )
    if listed is not None:
        results = listed.result()
    if checked is not None:
        auth = checked.result()
    return Facts(dnsbl=results, auth=auth)
