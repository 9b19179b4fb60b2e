"""The durable store: SQLite or PostgreSQL through SQLAlchemy Core, migrated by Alembic at open.

Every method is synchronous and short; the gateway calls them through the
writer (``store/writer.py``) so the event loop never waits on the database.
Accepting mail commits on the durable engine: the message is on disk
before the SMTP side says 250. Bookkeeping after that (verdicts, delivery
state) commits without waiting for the flush (``store/engines.py`` says
what that costs). Work is leased to a node (``store/leases.py``) so nodes
sharing one PostgreSQL never filter or deliver the same thing at once.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from store import leases
from store.engines import lock_for_migration, open_engines
from store.leases import Job, Lease
from store.outcomes import record_outcomes
from store.queue import (
    DeliveryGroup,
    close_deliveries,
    insert_deliveries,
    insert_delivery_groups,
    load_deliveries,
    schedule_retry,
)
from store.records import (
    Delivery,
    DeliveryKind,
    DeliveryState,
    Direction,
    EventRecord,
    Filtered,
    Finished,
    Held,
    MessageState,
    NewDelivery,
    Notices,
    Recorded,
    Spooled,
)
from store.schema import deliveries, messages

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
P = ParamSpec("P")
T = TypeVar("T")


def migrate(connection: Connection) -> None:
    """Bring the schema to the newest Alembic revision."""
    lock_for_migration(connection)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")  # the gateway and the SLA monitor each add branches


def new_queue_id() -> str:
    """A short, unique, sortable queue id: time prefix plus randomness."""
    return f"{int(time.time() * 1000):x}{secrets.token_hex(5)}".upper()


def spooled_from_row(r: Any) -> Spooled:
    """A ``Spooled`` from a row of ``messages`` (start-up recovery, takeover)."""
    rcpts = tuple(json.loads(r.rcpt_tos))
    return Spooled(
        r.id, r.received_at, r.mail_from, rcpts, r.raw, r.client_ip, r.helo, r.worker,
        Direction(r.direction),
    )  # fmt: skip


class Store:
    """All reads and writes the gateway makes; one instance per process.

    ``location`` is a SQLite file path or a database URL; ``lease`` names the
    node that owns the work this instance accepts and claims.
    """

    def __init__(self, location: Path | str, *, lease: Lease | None = None) -> None:
        self.location = location
        self.lease = lease or Lease(leases.node_name())
        self.leased_until = 0.0
        """Every row this node holds is leased at least until then (its last renewal)."""
        self._engines = open_engines(location)
        self.engine: Engine = self._engines.engine
        self.durable: Engine = self._engines.durable
        self.concurrent_writers = self._engines.concurrent_writers
        with self.engine.begin() as conn:
            migrate(conn)

    def close(self) -> None:
        self._engines.dispose()

    def read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(conn, ...)`` on a read connection (readers never wait for the writer)."""
        with self.engine.connect() as conn:
            return fn(conn, *args, **kwargs)

    def write(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(conn, ...)`` in one transaction; call it through the writer."""
        with self.engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    def writable(self) -> bool:
        """True when a write transaction commits (for /readyz)."""
        with self.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS _probe (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO _probe VALUES (1)")
            conn.exec_driver_sql("DELETE FROM _probe")
        return True

    # --- spool ------------------------------------------------------------------

    def spool(self, batch: Sequence[Spooled]) -> None:
        """Store accepted messages in one transaction (group commit: one flush for all)."""
        rows = [
            {
                "id": m.id,
                "received_at": m.received_at,
                "client_ip": m.client_ip,
                "helo": m.helo,
                "mail_from": m.mail_from,
                "rcpt_tos": json.dumps(m.rcpt_tos),
                "size": len(m.raw),
                "raw": m.raw,
                "state": MessageState.SPOOLED,
                "worker": m.worker,
                "direction": m.direction,
                **self.lease.values(m.received_at),
            }
            for m in batch
        ]
        with self.durable.begin() as conn:
            conn.execute(messages.insert(), rows)

    def claim_unfiltered(self, now: float, limit: int, *, own: bool = False) -> list[Spooled]:
        """Lease spooled messages no live node is filtering (``own``: ours from a past run)."""
        with self.engine.begin() as conn:
            ids = leases.claim_messages(conn, self.lease, now, limit, own=own)
            if not ids:
                return []
            rows = conn.execute(
                select(messages).where(messages.c.id.in_(ids)).order_by(messages.c.received_at)
            )
            return [spooled_from_row(r) for r in rows]

    def claim_unfiltered_ids(self, now: float) -> list[tuple[str, int]]:
        """Lease every spooled message of this node's past run and no live node's; ids and
        sizes only, oldest first, so start-up can stream the bodies in (``service/recovery``).
        """
        with self.engine.begin() as conn:
            ids = leases.claim_messages(conn, self.lease, now, 2**31 - 1, own=True)
            if not ids:
                return []
            query = select(messages.c.id, messages.c.size).where(messages.c.id.in_(ids))
            sizes = {r.id: int(r.size) for r in conn.execute(query)}
        return [(i, sizes[i]) for i in ids]

    def claim_deliveries(self, now: float, limit: int, *, own: bool = False) -> list[Delivery]:
        """Lease pending deliveries no live node is making (``own``: ours from a past run)."""
        with self.engine.begin() as conn:
            return load_deliveries(
                conn, leases.claim_deliveries(conn, self.lease, now, limit, own=own)
            )

    def keep_delivery(self, delivery: Delivery, now: float) -> bool:
        """Whether ``delivery`` is still ours to attempt now; False: another node has it.

        While the last renewal of all our leases has a third of a lease left
        (the renewal runs every third), no node can have claimed it: no write.
        Past that this node stalled, so the row's lease is checked and renewed.
        """
        if self.leases_fresh(now):
            return True
        with self.engine.begin() as conn:
            return leases.keep_delivery(conn, self.lease, delivery.id, now)

    def leases_fresh(self, now: float) -> bool:
        """True while the last renewal of this node's leases has a third of a lease left:
        then no node can have claimed any of its rows (the renewal runs every third)."""
        return now < self.leased_until - self.lease.seconds / 3

    def renew_leases(self, now: float) -> int:
        """Keep what this node works on; returns how many rows it holds."""
        with self.engine.begin() as conn:
            held = leases.renew(conn, self.lease, now)
        self.leased_until = now + self.lease.seconds
        return held

    def release_leases(self) -> int:
        """Hand this node's unfinished work to the others (graceful stop)."""
        with self.engine.begin() as conn:
            return leases.release(conn, self.lease)

    def hold_job(self, job: Job, now: float) -> bool:
        """True when this node holds (took or kept) the lease on ``job``."""
        with self.engine.begin() as conn:
            return leases.hold_job(conn, job, self.lease, now)

    # --- filtering outcome --------------------------------------------------------

    def record_filtered(
        self,
        message: Spooled,
        filtered_at: float,
        outcomes: Iterable[tuple[EventRecord, Sequence[NewDelivery], Held | None]],
        quarantine_quota: int = 1_000_000,
        notices: Notices | None = None,
    ) -> Recorded:
        """Deliveries, quarantine entries and events of one message, and mark it filtered.

        One transaction: after a crash the message is either still ``spooled``
        (and filtered again) or fully recorded, never half. ``notices`` builds
        the mail telling recipients their quarantine account was opened; it is
        queued in the same transaction, so an account is never opened without
        its notice, and it costs no second commit. Raises
        ``QuarantineUnavailable`` (nothing written) when a held message does not
        fit its domain's quarantine: the caller tags and delivers it instead;
        ``LeaseLost`` (nothing written) when another node has taken the message.
        """
        filtered = Filtered(message, filtered_at, list(outcomes), quarantine_quota, notices)
        return self.record_outcomes([filtered])[0]

    def record_outcomes(self, batch: Sequence[Filtered]) -> list[Recorded]:
        """``record_filtered`` for many messages in one transaction (the writer's group commit).

        Raises as ``record_filtered`` does when any message of the batch would:
        nothing is written then, and the caller records them one by one.
        """
        with self.engine.begin() as conn:
            return record_outcomes(conn, batch, self.lease)

    # --- delivery queue -------------------------------------------------------------

    def insert_deliveries(
        self, conn: Connection, message_id: str, received_at: float,
        items: Sequence[NewDelivery], now: float,
    ) -> list[Delivery]:  # fmt: skip
        """Queue deliveries inside the caller's transaction, leased to this node."""
        return insert_deliveries(conn, message_id, received_at, items, now, self.lease)

    def delivery_body(self, delivery: Delivery) -> bytes:
        """The bytes to send before rewriting: the delivery's own body or the spooled message."""
        if delivery.item.body is not None:
            return delivery.item.body
        with self.engine.connect() as conn:
            raw = conn.execute(
                select(messages.c.raw).where(messages.c.id == delivery.message_id)
            ).scalar_one()
        return bytes(raw)

    def finish_delivery(
        self,
        delivery: Delivery,
        state: DeliveryState,
        now: float,
        error: str | None = None,
        follow_up: Sequence[NewDelivery] = (),
    ) -> list[Delivery]:
        """Close a delivery (delivered, bounced, expired) and queue its follow-ups (DSNs)."""
        return self.finish([Finished(delivery, state, now, error, follow_up)])[0]

    def finish(self, batch: Sequence[Finished]) -> list[list[Delivery]]:
        """Close many deliveries in one transaction; per delivery, the follow-ups it queued."""
        groups = [
            DeliveryGroup(f.delivery.message_id, f.delivery.received_at, f.follow_up, f.now)
            for f in batch
        ]
        with self.engine.begin() as conn:
            close_deliveries(conn, batch)
            return insert_delivery_groups(conn, groups, self.lease)

    def submit(
        self, raw: bytes, rcpt_tos: Sequence[str], now: float, kind: DeliveryKind
    ) -> list[Delivery]:
        """Mail the gateway writes itself (alerts to customers): stored like accepted mail."""
        message_id = new_queue_id()
        domains: dict[str, list[str]] = {}
        for rcpt in rcpt_tos:
            domains.setdefault(rcpt.rpartition("@")[2].lower(), []).append(rcpt)
        items = [NewDelivery(kind, d, "", tuple(r)) for d, r in domains.items()]
        with self.durable.begin() as conn:
            conn.execute(messages.insert().values(
                id=message_id, received_at=now, client_ip=None, helo=None, mail_from="",
                rcpt_tos=json.dumps(list(rcpt_tos)), size=len(raw), raw=raw,
                state=MessageState.FILTERED, worker=0,
            ))  # fmt: skip
            return self.insert_deliveries(conn, message_id, now, items, now)

    def add_follow_ups(
        self, delivery: Delivery, now: float, follow_up: Sequence[NewDelivery]
    ) -> list[Delivery]:
        """Queue deliveries caused by another one (DSNs) without closing it."""
        with self.engine.begin() as conn:
            return self.insert_deliveries(
                conn, delivery.message_id, delivery.received_at, follow_up, now
            )

    def retry_later(
        self,
        delivery: Delivery,
        now: float,
        next_attempt_at: float,
        error: str,
        rcpt_tos: Sequence[str] | None = None,
    ) -> None:
        """Count a failed attempt and schedule the next; ``rcpt_tos`` narrows who is left."""
        with self.engine.begin() as conn:
            schedule_retry(conn, delivery, now, next_attempt_at, error, rcpt_tos)

    def queue_lengths(self) -> dict[str, int]:
        """Pending deliveries per destination domain."""
        query = (
            select(deliveries.c.domain, func.count())
            .where(deliveries.c.state == DeliveryState.PENDING)
            .group_by(deliveries.c.domain)
        )
        with self.engine.connect() as conn:
            return {domain: int(n) for domain, n in conn.execute(query)}
