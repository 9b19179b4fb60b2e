"""Blacklist stage: private lists of every scope, then the DNS block-list facts.

One entry on any list that applies to any recipient is enough: a blacklist
is a refusal, and a message is spam for a user who blocked its sender.
"""

from __future__ import annotations

from filters import dnsbl
from filters.facts import Facts
from filters.lists import global_scope, match_entry, recipient_scopes
from filters.mail import Mail
from filters.policy import DomainPolicy, PolicyConfig
from filters.verdict import Hit, Stage

PRIVATE = "BLACKLIST_PRIVATE"


def check(mail: Mail, facts: Facts, config: PolicyConfig, domain: DomainPolicy) -> tuple[Hit, ...]:
    """``BLACKLIST_PRIVATE`` hits for list entries, then DNSBL/URIBL hits from the facts."""
    hits = list(private_hits(mail, config, domain))
    hits += dnsbl.dnsbl_hits(facts.dnsbl, config.dnsbl, domain.actions.dnsbl)
    return tuple(hits)


def private_hits(mail: Mail, config: PolicyConfig, domain: DomainPolicy) -> list[Hit]:
    sender = mail.sender
    found: dict[str, str] = {}
    scopes = [global_scope(config)]
    for recipient in mail.recipients or ("",):
        scopes += recipient_scopes(config, domain, recipient)
    for scope in scopes:
        entry = match_entry(sender, scope.lists.blacklist)
        if entry is not None:
            found.setdefault(scope.label, entry)
    return [
        Hit(
            PRIVATE,
            Stage.BLACKLIST,
            f"sender {sender} on the {label} blacklist ({entry})",
            config.score(PRIVATE),
            domain.actions.blacklist,
        )
        for label, entry in found.items()
    ]
