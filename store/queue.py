"""The delivery queue's rows: bulk-inserted, loaded, closed and retried in a caller's transaction.

Functions take a ``Connection`` so the caller decides what commits together
(a message's whole outcome, a digest with its account's timestamp).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection

from store.leases import Lease
from store.records import Delivery, DeliveryKind, DeliveryState, Finished, NewDelivery
from store.schema import deliveries, events, messages


@dataclass(frozen=True, slots=True)
class DeliveryGroup:
    """New deliveries of one stored message, due ``now``; ``raw``: its bytes, handed on in
    memory to the first attempt."""

    message_id: str
    received_at: float
    items: Sequence[NewDelivery]
    now: float
    raw: bytes | None = None


def insert_deliveries(
    conn: Connection,
    message_id: str,
    received_at: float,
    items: Sequence[NewDelivery],
    now: float,
    lease: Lease,
    raw: bytes | None = None,
) -> list[Delivery]:
    """Queue deliveries of a stored message, due now and leased to ``lease``'s owner."""
    group = DeliveryGroup(message_id, received_at, items, now, raw)
    return insert_delivery_groups(conn, [group], lease)[0]


def insert_delivery_groups(
    conn: Connection, groups: Sequence[DeliveryGroup], lease: Lease
) -> list[list[Delivery]]:
    """Queue the deliveries of several messages, leased to ``lease``'s owner; per group.

    One multi-row INSERT ... RETURNING for all of them (ids come back in order).
    """
    rows = [
        {"message_id": g.message_id, "kind": d.kind, "domain": d.domain, "mail_from": d.mail_from,
         "rcpt_tos": json.dumps(d.rcpt_tos), "prefix": d.prefix, "subject_tag": d.subject_tag,
         "body": d.body, "is_spam": d.is_spam, "state": DeliveryState.PENDING, "attempts": 0,
         "created_at": g.now, "next_attempt_at": g.now, "updated_at": g.now, "reclaimed": 0,
         **lease.values(g.now)}
        for g in groups
        for d in g.items
    ]  # fmt: skip
    if not rows:
        return [[] for _ in groups]
    ids = iter(
        conn.execute(
            deliveries.insert().returning(deliveries.c.id, sort_by_parameter_order=True), rows
        ).scalars()
    )
    return [
        [
            Delivery(int(next(ids)), g.message_id, d, 0, g.now, g.now, g.received_at,
                     g.raw if d.body is None else None)
            for d in g.items
        ]
        for g in groups
    ]  # fmt: skip


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


_CLOSE = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"), updated_at=bindparam("b_now"), last_error=bindparam("b_error"),
        attempts=bindparam("b_attempts"), lease_owner=None,
    )
)  # fmt: skip
_OPEN_EVENT = (
    update(events)
    .where(events.c.message_id == bindparam("b_message_id"))
    .where(events.c.delivered_at.is_(None))
)
_EVENT_UPDATES = {
    # (one domain's event, arrived): the statement that gives the event its final word
    (True, True): _OPEN_EVENT.where(events.c.domain == bindparam("b_domain")).values(
        delivered_at=bindparam("b_now")
    ),
    (True, False): _OPEN_EVENT.where(events.c.domain == bindparam("b_domain")).values(
        outcome=bindparam("b_state"), detail=bindparam("b_error")
    ),
    (False, True): _OPEN_EVENT.values(delivered_at=bindparam("b_now")),
    (False, False): _OPEN_EVENT.values(outcome=bindparam("b_state"), detail=bindparam("b_error")),
}


def close_deliveries(conn: Connection, batch: Sequence[Finished]) -> None:
    """Close several deliveries (one UPDATE per statement shape, many rows each).

    The event keeps the final word for the SLA monitor: when the message
    arrived, or that it never did and why. A redirect's event is the
    message's, whatever domain it went to; a delivery's is its domain's.
    """
    rows = [
        {"b_id": f.delivery.id, "b_state": f.state, "b_now": f.now, "b_error": f.error,
         "b_attempts": f.delivery.attempts + 1, "b_message_id": f.delivery.message_id,
         "b_domain": f.delivery.item.domain}
        for f in batch
    ]  # fmt: skip
    conn.execute(_CLOSE, rows)
    shapes: dict[tuple[bool, bool], list[dict[str, Any]]] = {}
    for f, row in zip(batch, rows, strict=True):
        kind = f.delivery.item.kind
        if kind in (DeliveryKind.DELIVER, DeliveryKind.REDIRECT):
            shape = (kind is DeliveryKind.DELIVER, f.state == DeliveryState.DELIVERED)
            shapes.setdefault(shape, []).append(row)
    for shape, shaped in shapes.items():
        conn.execute(_EVENT_UPDATES[shape], shaped)


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
