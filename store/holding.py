"""Indexing a held message by recipient and opening accounts, inside the filtering transaction.

It lives in the store layer because ``Store.record_filtered`` must do it in the
same transaction as the quarantine row: the quota check and the account rows
commit or roll back with the message's outcome.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from filters.lists import domain_of
from store.quarantine_tables import accounts, held_recipients
from store.schema import quarantine


class QuarantineUnavailable(Exception):
    """The quarantine cannot take this message (quota reached or the store failed)."""


def hold(
    conn: Connection, *, held_id: str, recipients: Sequence[str], quota: int, now: float
) -> list[str]:
    """Index a just-inserted held message by recipient; returns recipients given a new account.

    Raises ``QuarantineUnavailable`` when the domain already holds ``quota``
    messages: the caller then tags and delivers instead (SPEC 3).
    """
    domain = domain_of(recipients[0]) if recipients else ""
    count = conn.execute(
        select(func.count()).select_from(quarantine)
        .where(quarantine.c.domain == domain, quarantine.c.state == "held")
    ).scalar_one()  # fmt: skip
    if count > quota:  # the row itself is already counted
        raise QuarantineUnavailable(f"quarantine of {domain} is full ({quota} messages)")
    conn.execute(
        held_recipients.insert(),
        [{"held_id": held_id, "address": r.lower(), "domain": domain_of(r)} for r in recipients],
    )
    known = set(
        conn.execute(
            select(accounts.c.address).where(
                accounts.c.address.in_([r.lower() for r in recipients])
            )
        ).scalars()
    )
    created = [r.lower() for r in recipients if r.lower() not in known]
    if created:
        conn.execute(
            accounts.insert(),
            [{"address": a, "domain": domain_of(a), "created_at": now, "notify": "daily",
              "every_hours": None, "last_digest_at": None} for a in created],
        )  # fmt: skip
    return created
