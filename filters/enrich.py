"""Enrichment: run every lookup that needs I/O up front, so deciding stays a pure function.

The pipeline's ``evaluate(mail, facts, policy)`` opens no socket and reads no
clock; this module is the one place a message's facts are fetched, concurrently
and each under its own timeout. Replay and tests skip it and build ``Facts`` by
hand, which is why the two halves are kept apart.
"""

from __future__ import annotations

from filters.dnsbl import DnsblClient
from filters.facts import Facts
from filters.mail import Mail
from filters.policy import PolicyConfig


async def enrich(mail: Mail, config: PolicyConfig, dnsbl: DnsblClient) -> Facts:
    """Gather the facts ``evaluate`` needs: today, the DNS block-list answers.

    The body's URLs are only parsed when a domain zone is configured.
    """
    zones = config.dnsbl
    if not zones:
        return Facts()
    domains = mail.domains if any(zone.kind == "domain" for zone in zones) else ()
    results = await dnsbl.lookup(zones, mail.envelope.client_ip, domains)
    return Facts(dnsbl=results)
