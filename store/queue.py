"""The delivery queue's rows: bulk-inserted, loaded, closed and retried in a caller's transaction.

Functions take a ``Connection`` so the caller decides what commits together
(a message's whole outcome, a digest with its account's timestamp).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from store.leases import Lease
from store.records import Delivery, DeliveryKind, DeliveryState, NewDelivery
from store.schema import deliveries, events, messages


def insert_deliveries(
    conn: Connection,
    message_id: str,
    received_at: float,
    items: Sequence[NewDelivery],
    now: float,
    lease: Lease,
    raw: bytes | None = None,
) -> list[Delivery]:
    """Queue deliveries of a stored message, due now and leased to ``lease``'s owner.

    One multi-row INSERT ... RETURNING for all of them (ids come back in order).
    ``raw``: the message's bytes, handed on in memory to the first attempt.
    """
    if not items:
        return []
    held = lease.values(now)
    rows = [
        {"message_id": message_id, "kind": d.kind, "domain": d.domain, "mail_from": d.mail_from,
         "rcpt_tos": json.dumps(d.rcpt_tos), "prefix": d.prefix, "subject_tag": d.subject_tag,
         "body": d.body, "is_spam": d.is_spam, "state": DeliveryState.PENDING, "attempts": 0,
         "created_at": now, "next_attempt_at": now, "updated_at": now, "reclaimed": 0, **held}
        for d in items
    ]  # fmt: skip
    ids = conn.execute(
        deliveries.insert().returning(deliveries.c.id, sort_by_parameter_order=True), rows
    ).scalars()
    return [
        Delivery(int(key), message_id, d, 0, now, now, received_at, raw if d.body is None else None)
        for key, d in zip(ids, items, strict=True)
    ]


def delivery_from_row(r: Any) -> Delivery:
    """A ``Delivery`` from a row of ``deliveries`` joined with the message's ``received_at``."""
    item = NewDelivery(
        DeliveryKind(r.kind),
        r.domain,
        r.mail_from,
        tuple(json.loads(r.rcpt_tos)),
        r.prefix,
        r.subject_tag,
        r.body,
        r.is_spam,
    )
    return Delivery(
        r.id, r.message_id, item, r.attempts, r.created_at, r.next_attempt_at, r.received_at
    )


def load_deliveries(conn: Connection, ids: Sequence[int]) -> list[Delivery]:
    """The deliveries with these ids, soonest due first."""
    if not ids:
        return []
    query = (
        select(deliveries, messages.c.received_at)
        .join(messages, messages.c.id == deliveries.c.message_id)
        .where(deliveries.c.id.in_(ids))
        .order_by(deliveries.c.next_attempt_at)
    )
    return [delivery_from_row(r) for r in conn.execute(query)]


def close_delivery(
    conn: Connection, delivery: Delivery, state: DeliveryState, now: float, error: str | None
) -> None:
    """Mark a delivery done (delivered, bounced, expired), release it, and update its event."""
    conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery.id)
        .values(
            state=state, updated_at=now, last_error=error, attempts=delivery.attempts + 1,
            lease_owner=None,
        )
    )  # fmt: skip
    if delivery.item.kind not in (DeliveryKind.DELIVER, DeliveryKind.REDIRECT):
        return
    # The event keeps the final word for the SLA monitor: when it arrived, or
    # that it never did and why.
    values = (
        {"delivered_at": now}
        if state == DeliveryState.DELIVERED
        else {"outcome": state, "detail": error}
    )
    event = (
        update(events)
        .where(events.c.message_id == delivery.message_id)
        .where(events.c.delivered_at.is_(None))
    )
    if delivery.item.kind is DeliveryKind.DELIVER:
        event = event.where(events.c.domain == delivery.item.domain)
    conn.execute(event.values(**values))


def schedule_retry(
    conn: Connection,
    delivery: Delivery,
    now: float,
    next_attempt_at: float,
    error: str,
    rcpt_tos: Sequence[str] | None,
) -> None:
    """Count a failed attempt and set the next; ``rcpt_tos`` narrows who is left."""
    values: dict[str, Any] = {
        "attempts": delivery.attempts + 1,
        "next_attempt_at": next_attempt_at,
        "updated_at": now,
        "last_error": error,
    }
    if rcpt_tos is not None:
        values["rcpt_tos"] = json.dumps(list(rcpt_tos))
    conn.execute(update(deliveries).where(deliveries.c.id == delivery.id).values(**values))


def bounced_alerts(conn: Connection, addresses: Sequence[str]) -> set[str]:
    """Which of ``addresses`` (lower-cased) a virus alert has bounced from: no more go there.

    An alert has one recipient, so its ``rcpt_tos`` is exactly ``["address"]``.
    """
    keys = {json.dumps([a.lower()]): a.lower() for a in addresses}
    domains = sorted({a.rpartition("@")[2].lower() for a in addresses})
    found = conn.execute(
        select(func.lower(deliveries.c.rcpt_tos))
        .where(deliveries.c.state == DeliveryState.BOUNCED, deliveries.c.domain.in_(domains))
        .where(deliveries.c.kind == DeliveryKind.VIRUS_ALERT)
        .where(func.lower(deliveries.c.rcpt_tos).in_(sorted(keys)))
    ).scalars()
    return {keys[k] for k in found}
