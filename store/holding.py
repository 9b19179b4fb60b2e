"""Quarantine rows, their recipient index and new accounts, inside the filtering transaction.

It lives in the store layer because ``store.outcomes`` must do it in the
same transaction as the quarantine row: the quota check and the account rows
commit or roll back with the message's outcome.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from filters.lists import domain_of
from store.quarantine_tables import accounts, held_recipients
from store.records import Filtered, Held
from store.schema import quarantine


class QuarantineUnavailable(Exception):
    """The quarantine cannot take this message (quota reached or the store failed)."""


def _quarantine_row(f: Filtered, held: Held) -> dict[str, object]:
    message = f.message
    return {
        "id": held.id,
        "message_id": message.id,
        "domain": held.domain,
        "mail_from": message.mail_from,
        "rcpt_tos": json.dumps(held.rcpt_tos),
        "category": held.category,
        "never_release": held.never_release,
        "score": held.score,
        "hits": json.dumps(held.hits),
        "quarantined_at": f.filtered_at,
        "expires_at": held.expires_at,
        "state": "held",
        "subject": held.subject,
        "size": len(message.raw),
        "viruses": json.dumps(held.viruses),
    }


def hold(
    conn: Connection, batch: Sequence[Filtered], held: list[tuple[int, Held]]
) -> list[list[str]]:
    """Quarantine rows, the quota check, the recipient index and new accounts of a batch.

    As for each message alone: a domain's quarantine is counted with the new
    rows in it (``QuarantineUnavailable`` past the smallest quota of the batch's
    messages held there), and an address is new to the first message of the
    batch that holds mail for it. Returns, per message, the addresses given an account.
    """
    conn.execute(quarantine.insert(), [_quarantine_row(batch[n], h) for n, h in held])
    quotas: dict[str, int] = {}
    for n, h in held:
        domain = domain_of(h.rcpt_tos[0]) if h.rcpt_tos else ""
        quota = batch[n].quarantine_quota
        quotas[domain] = min(quotas.get(domain, quota), quota)
    counts = conn.execute(
        select(quarantine.c.domain, func.count())
        .where(quarantine.c.domain.in_(sorted(quotas)), quarantine.c.state == "held")
        .group_by(quarantine.c.domain)
    )
    for domain, count in counts:
        if count > quotas[domain]:  # the new rows themselves are counted
            raise QuarantineUnavailable(
                f"quarantine of {domain} is full ({quotas[domain]} messages)"
            )
    index = [
        {"held_id": h.id, "address": r.lower(), "domain": domain_of(r)}
        for _, h in held
        for r in h.rcpt_tos
    ]
    if index:
        conn.execute(held_recipients.insert(), index)
    addresses = sorted({str(row["address"]) for row in index})
    known = set(
        conn.execute(select(accounts.c.address).where(accounts.c.address.in_(addresses))).scalars()
    )
    opened: list[list[str]] = [[] for _ in batch]
    rows = []
    for n, h in held:
        created = [r.lower() for r in h.rcpt_tos if r.lower() not in known]
        known.update(created)
        opened[n] += created
        rows += [
            {"address": a, "domain": domain_of(a), "created_at": batch[n].filtered_at,
             "notify": "daily", "every_hours": None, "last_digest_at": None}
            for a in created
        ]  # fmt: skip
    if rows:
        conn.execute(accounts.insert(), rows)
    return opened
