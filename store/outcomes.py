"""Filtering outcomes of many messages written in one transaction, with one statement per table.

The gateway records each message's outcome (marked filtered, events,
deliveries, quarantine entries, new accounts and their notices) on one
writer thread; one transaction and one statement per row apiece made that
thread the gateway's bottleneck. ``record_outcomes`` writes a whole batch
with one UPDATE and one multi-row INSERT per table, and gives each message
exactly what recording it alone would have: when any message of the batch
cannot be recorded as asked (its lease is lost, a quarantine is full) it
raises, so the caller rolls back and records the messages one by one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.engine import Connection

from store.holding import hold
from store.leases import Lease, LeaseLost
from store.queue import DeliveryGroup, insert_delivery_groups
from store.records import Filtered, MessageState, NewDelivery, Recorded
from store.schema import events, messages


def record_outcomes(conn: Connection, batch: Sequence[Filtered], lease: Lease) -> list[Recorded]:
    """Record every message of ``batch`` in the caller's transaction; results in batch order.

    Raises ``LeaseLost`` unless every message is still spooled and leased to
    ``lease``, ``QuarantineUnavailable`` when a domain's quarantine would pass
    the smallest quota asked of it: roll back and record one at a time to learn
    which message it concerns. Nothing is written that the caller keeps then.
    """
    _mark_filtered(conn, batch, lease)
    if rows := [row for f in batch for row in _event_rows(f)]:
        conn.execute(events.insert(), rows)
    groups = [
        DeliveryGroup(f.message.id, f.message.received_at, _items(f), f.filtered_at, f.message.raw)
        for f in batch
    ]
    created = insert_delivery_groups(conn, groups, lease)
    held = [(n, h) for n, f in enumerate(batch) for _, _, h in f.outcomes if h is not None]
    opened = hold(conn, batch, held) if held else [[] for _ in batch]
    notices = [
        DeliveryGroup(
            f.message.id, f.message.received_at,
            f.notices(new, f.filtered_at) if new and f.notices is not None else (), f.filtered_at,
        )
        for f, new in zip(batch, opened, strict=True)
    ]  # fmt: skip
    noticed = insert_delivery_groups(conn, notices, lease)
    return [
        Recorded([*made, *notice], new)
        for made, notice, new in zip(created, noticed, opened, strict=True)
    ]


def _items(f: Filtered) -> list[NewDelivery]:
    return [item for _, items, _ in f.outcomes for item in items]


def _mark_filtered(conn: Connection, batch: Sequence[Filtered], lease: Lease) -> None:
    ids = [f.message.id for f in batch]
    filtered = conn.execute(
        update(messages)
        .where(messages.c.id.in_(ids))
        .where(messages.c.state == MessageState.SPOOLED)
        .where(messages.c.lease_owner == lease.owner)
        .values(state=MessageState.FILTERED, lease_owner=None)
    )
    if filtered.rowcount != len(ids):  # a repeated id counts once: recorded alone, it fails
        lost = f"message {ids[0]} is" if len(ids) == 1 else "messages of this batch are"
        raise LeaseLost(f"{lost} no longer leased to {lease.owner}")


def _event_rows(f: Filtered) -> list[dict[str, object]]:
    message = f.message
    return [
        {
            "message_id": message.id,
            "domain": record.domain,
            "received_at": message.received_at,
            "filtered_at": f.filtered_at,
            "action": record.action,
            "category": record.category,
            "outcome": record.outcome,
            "score": record.score,
            "symbols": json.dumps(record.symbols),
            "hits": json.dumps(record.hits),
            "size": len(message.raw),
            "recipients": record.recipients,
            "detail": record.detail,
            "direction": message.direction,
        }
        for record, _, _ in f.outcomes
    ]
