"""Leases: which node works on a spooled message or a pending delivery, and until when.

A node leases the rows it accepts or creates and renews its leases while
it lives; another node claims a row only once its lease has run out, with
``SELECT ... FOR UPDATE SKIP LOCKED`` inside one ``UPDATE`` so two nodes
never claim the same row (SQLite, which ignores ``FOR UPDATE``, serialises
writers instead: there the single statement is just as exclusive). A
graceful stop releases (owner NULL), so others take over at once; a claim
of a row whose owner never released it counts in ``reclaimed``: the dead
node may have delivered it, so the delivery may repeat once.

Named jobs (the quarantine purge, digests, the queue watch, the
availability probe, the outbreak watch) use the same idea on one row each in ``job_leases``:
whoever holds the lease runs the job, so it runs on one node however many
there are, and customers get one alert, not one per node.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, case, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from store.records import DeliveryState, MessageState
from store.schema import deliveries, job_leases, messages

DEFAULT_SECONDS = 60.0


class LeaseLost(Exception):
    """Another node claimed this row after our lease ran out; it does the work now."""


class Job(StrEnum):
    """Work that must run on one node at a time; each has its row in ``job_leases``."""

    PURGE = "purge"
    DIGESTS = "digests"
    QUEUE_WATCH = "queue-watch"
    AVAILABILITY = "availability"
    OUTBREAKS = "outbreaks"


def node_or_host(node: str | None) -> str:
    """The configured node name, else this host's name."""
    return node or socket.gethostname()


def node_name(worker: int = 0, node: str | None = None) -> str:
    """A stable lease owner: the configured node name (else the host name) and the worker.

    Stable, so a node restarting after a crash takes its own work back at once
    instead of waiting for its old leases to run out.
    """
    return f"{node_or_host(node)}/{worker}"


@dataclass(frozen=True)
class Lease:
    """Who holds leases taken through this store, and for how long each lasts."""

    owner: str
    seconds: float = DEFAULT_SECONDS

    def values(self, now: float) -> dict[str, Any]:
        """Column values that lease a new row to this owner."""
        return {"lease_owner": self.owner, "lease_until": now + self.seconds}


def _open(table: Table, state: str) -> Any:
    return table.c.state == state


def _free(table: Table, now: float, lease: Lease, own: bool) -> Any:
    mine = table.c.lease_owner == lease.owner
    if own:  # start-up: ours are left from a previous run, whatever their expiry
        return or_(table.c.lease_until < now, mine)
    # Running: ours are already in memory here, even if a late renewal let them expire.
    others = or_(table.c.lease_owner.is_(None), table.c.lease_owner != lease.owner)
    return (table.c.lease_until < now) & others


def claim_messages(
    conn: Connection, lease: Lease, now: float, limit: int, *, own: bool = False
) -> list[str]:
    """Lease up to ``limit`` spooled messages whose lease ran out; ``own``: also our own.

    Returns the claimed ids, oldest first. ``own`` is for start-up: rows under
    our own name are left from a previous run of this node.
    """
    free = _open(messages, MessageState.SPOOLED) & _free(messages, now, lease, own)
    candidates = (
        select(messages.c.id).where(free).order_by(messages.c.received_at).limit(limit)
        .with_for_update(skip_locked=True)
    )  # fmt: skip
    claimed = conn.execute(
        update(messages).where(messages.c.id.in_(candidates.scalar_subquery())).where(free)
        .values(**lease.values(now)).returning(messages.c.id, messages.c.received_at)
    ).all()  # fmt: skip
    return [row.id for row in sorted(claimed, key=lambda r: r.received_at)]


def claim_deliveries(
    conn: Connection, lease: Lease, now: float, limit: int, *, own: bool = False
) -> list[int]:
    """Lease up to ``limit`` pending deliveries whose lease ran out; counts takeovers."""
    free = _open(deliveries, DeliveryState.PENDING) & _free(deliveries, now, lease, own)
    candidates = (
        select(deliveries.c.id).where(free).order_by(deliveries.c.next_attempt_at).limit(limit)
        .with_for_update(skip_locked=True)
    )  # fmt: skip
    taken_over = case((deliveries.c.lease_owner.is_(None), 0), else_=1)
    return list(
        conn.execute(
            update(deliveries).where(deliveries.c.id.in_(candidates.scalar_subquery()))
            .where(free)
            .values(reclaimed=deliveries.c.reclaimed + taken_over, **lease.values(now))
            .returning(deliveries.c.id)
        ).scalars()
    )  # fmt: skip


def keep_delivery(conn: Connection, lease: Lease, delivery_id: int, now: float) -> bool:
    """Renew this owner's lease on one pending delivery; False when it is no longer ours.

    Called right before an attempt. A lease that ran out while this node
    stalled is renewed only if no node has claimed the row meanwhile (the
    owner is still us): a claim and this update exclude each other, so once
    it returns True nobody else attempts the delivery for a full lease.
    """
    kept = conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .where(deliveries.c.lease_owner == lease.owner)
        .where(_open(deliveries, DeliveryState.PENDING))
        .values(**lease.values(now))
    ).rowcount
    return bool(kept)


def renew(conn: Connection, lease: Lease, now: float) -> int:
    """Extend every lease this owner holds, jobs included; returns how many rows it holds."""
    held = 0
    for table, state in (
        (messages, MessageState.SPOOLED),
        (deliveries, DeliveryState.PENDING),
    ):
        result = conn.execute(
            update(table)
            .where(table.c.lease_owner == lease.owner, _open(table, state))
            .values(lease_until=now + lease.seconds)
        )
        held += result.rowcount
    conn.execute(
        update(job_leases)
        .where(job_leases.c.owner == lease.owner)
        .values(lease_until=now + lease.seconds)
    )
    return held


def release(conn: Connection, lease: Lease) -> int:
    """Give up every lease this owner holds (graceful stop): others take the work at once."""
    freed = 0
    for table in (messages, deliveries):
        result = conn.execute(
            update(table)
            .where(table.c.lease_owner == lease.owner)
            .values(lease_owner=None, lease_until=0.0)
        )
        freed += result.rowcount
    conn.execute(
        update(job_leases)
        .where(job_leases.c.owner == lease.owner)
        .values(owner=None, lease_until=0.0)
    )
    return freed


def hold_job(conn: Connection, name: Job, lease: Lease, now: float) -> bool:
    """Take or keep the lease on job ``name``; True when this owner now holds it.

    A job newer than the migration that seeded ``job_leases`` gets its row on
    the first claim; when two nodes race to add it, the primary key lets one
    win and the other (its insert undone in a savepoint) does not hold it.
    """
    taken = conn.execute(
        update(job_leases)
        .where(job_leases.c.name == name)
        .where(or_(job_leases.c.owner == lease.owner, job_leases.c.lease_until < now))
        .values(owner=lease.owner, lease_until=now + lease.seconds)
    ).rowcount
    if taken:
        return True
    if conn.execute(select(job_leases.c.name).where(job_leases.c.name == name)).first():
        return False  # another node holds it
    try:
        with conn.begin_nested():
            conn.execute(
                insert(job_leases).values(
                    name=name, owner=lease.owner, lease_until=now + lease.seconds
                )
            )
    except IntegrityError:
        return False
    return True
