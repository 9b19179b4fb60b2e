"""The durable store: SQLite through SQLAlchemy Core, migrated by Alembic at open.

Every method is synchronous and short; the gateway calls them from one
writer thread (``store/writer.py``) so the event loop never waits on disk.
SQLite runs in WAL mode. Accepting mail commits with ``synchronous=FULL``:
the message is on disk (fsync) before the SMTP side says 250. Bookkeeping
after that (verdicts, delivery state) commits with ``synchronous=NORMAL``: it
survives a crash of the process; a crash of the whole machine may lose the
last few bookkeeping commits, so a message is filtered or delivered again
(at least once), never lost. That saves an fsync per message on the writer.
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
from sqlalchemy import Engine, create_engine, event, func, select, update
from sqlalchemy.engine import Connection

from store.holding import hold
from store.records import (
    Delivery,
    DeliveryKind,
    DeliveryState,
    EventRecord,
    Held,
    MessageState,
    NewDelivery,
    Recorded,
    Spooled,
)
from store.schema import deliveries, events, messages, quarantine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
P = ParamSpec("P")
T = TypeVar("T")


def _pragmas(synchronous: str) -> Callable[[Any, Any], None]:
    def apply(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return apply


def migrate(connection: Connection) -> None:
    """Bring the schema to the newest Alembic revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "heads")  # the gateway and the SLA monitor each add branches


def new_queue_id() -> str:
    """A short, unique, sortable queue id: time prefix plus randomness."""
    return f"{int(time.time() * 1000):x}{secrets.token_hex(5)}".upper()


def insert_deliveries(
    conn: Connection,
    message_id: str,
    received_at: float,
    items: Sequence[NewDelivery],
    now: float,
    worker: int = 0,
) -> list[Delivery]:
    """Queue deliveries of a stored message, due now; one by one, since each new id is needed."""
    created = []
    for d in items:
        result = conn.execute(
            deliveries.insert().values(
                message_id=message_id, kind=d.kind, domain=d.domain, mail_from=d.mail_from,
                rcpt_tos=json.dumps(d.rcpt_tos), prefix=d.prefix, subject_tag=d.subject_tag,
                body=d.body, is_spam=d.is_spam, state=DeliveryState.PENDING, attempts=0,
                created_at=now, next_attempt_at=now, updated_at=now, worker=worker,
            )
        )  # fmt: skip
        key = result.inserted_primary_key
        assert key is not None, "insert returned no primary key"
        created.append(Delivery(int(key[0]), message_id, d, 0, now, now, received_at))
    return created


class Store:
    """All reads and writes the gateway makes; one instance per process."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.engine: Engine = create_engine(f"sqlite:///{path}")
        event.listen(self.engine, "connect", _pragmas("NORMAL"))
        self.durable: Engine = create_engine(f"sqlite:///{path}")
        event.listen(self.durable, "connect", _pragmas("FULL"))
        with self.engine.begin() as conn:
            migrate(conn)

    def close(self) -> None:
        self.engine.dispose()
        self.durable.dispose()

    def read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(conn, ...)`` on a read connection (WAL: readers never wait for the writer)."""
        with self.engine.connect() as conn:
            return fn(conn, *args, **kwargs)

    def write(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn(conn, ...)`` in one transaction; call it on the writer thread."""
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
        """Store accepted messages in one transaction (group commit: one fsync for all)."""
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
                "state": "spooled",
                "worker": m.worker,
            }
            for m in batch
        ]
        with self.durable.begin() as conn:
            conn.execute(messages.insert(), rows)

    def unfiltered(self, worker: int, workers: int) -> list[Spooled]:
        """Messages accepted but not yet filtered (after a crash), oldest first."""
        query = (
            select(messages)
            .where(messages.c.state == MessageState.SPOOLED)
            .where(self._mine(messages.c.worker, worker, workers))
            .order_by(messages.c.received_at)
        )
        with self.engine.connect() as conn:
            return [
                Spooled(
                    r.id,
                    r.received_at,
                    r.mail_from,
                    tuple(json.loads(r.rcpt_tos)),
                    r.raw,
                    r.client_ip,
                    r.helo,
                    r.worker,
                )
                for r in conn.execute(query)
            ]

    @staticmethod
    def _mine(column: Any, worker: int, workers: int) -> Any:
        # Worker 0 also adopts rows of workers that no longer exist (fewer --workers).
        return (column == worker) | (column >= workers) if worker == 0 else column == worker

    # --- filtering outcome --------------------------------------------------------

    def record_filtered(
        self,
        message: Spooled,
        filtered_at: float,
        outcomes: Iterable[tuple[EventRecord, Sequence[NewDelivery], Held | None]],
        quarantine_quota: int = 1_000_000,
    ) -> Recorded:
        """Deliveries, quarantine entries and events of one message, and mark it filtered.

        One transaction: after a crash the message is either still ``spooled``
        (and filtered again) or fully recorded, never half. Raises
        ``QuarantineUnavailable`` (nothing written) when a held message does not
        fit its domain's quarantine: the caller tags and delivers it instead.
        """
        created: list[Delivery] = []
        accounts: list[str] = []
        with self.engine.begin() as conn:
            for record, items, held in outcomes:
                conn.execute(
                    events.insert(),
                    {
                        "message_id": message.id,
                        "domain": record.domain,
                        "received_at": message.received_at,
                        "filtered_at": filtered_at,
                        "action": record.action,
                        "category": record.category,
                        "outcome": record.outcome,
                        "score": record.score,
                        "symbols": json.dumps(record.symbols),
                        "hits": json.dumps(record.hits),
                        "size": len(message.raw),
                        "recipients": record.recipients,
                        "detail": record.detail,
                    },
                )
                created += self._insert_deliveries(conn, message, items, filtered_at)
                if held is not None:
                    self._insert_held(conn, message, held, filtered_at)
                    accounts += hold(
                        conn, held_id=held.id, recipients=held.rcpt_tos, quota=quarantine_quota,
                        now=filtered_at,
                    )  # fmt: skip
            conn.execute(
                update(messages)
                .where(messages.c.id == message.id)
                .values(state=MessageState.FILTERED)
            )
        return Recorded(created, accounts)

    def _insert_deliveries(
        self,
        conn: Connection,
        message: Spooled | Delivery,
        items: Sequence[NewDelivery],
        now: float,
    ) -> list[Delivery]:
        if isinstance(message, Spooled):
            return insert_deliveries(
                conn, message.id, message.received_at, items, now, message.worker
            )
        return insert_deliveries(conn, message.message_id, message.received_at, items, now)

    def _insert_held(self, conn: Connection, message: Spooled, held: Held, now: float) -> None:
        conn.execute(
            quarantine.insert(),
            {
                "id": held.id,
                "message_id": message.id,
                "domain": held.domain,
                "mail_from": message.mail_from,
                "rcpt_tos": json.dumps(held.rcpt_tos),
                "category": held.category,
                "never_release": held.never_release,
                "score": held.score,
                "hits": json.dumps(held.hits),
                "quarantined_at": now,
                "expires_at": held.expires_at,
                "state": "held",
                "subject": held.subject,
                "size": len(message.raw),
                "viruses": json.dumps(held.viruses),
            },
        )

    # --- delivery queue -------------------------------------------------------------

    def pending_deliveries(self, worker: int, workers: int) -> list[Delivery]:
        """Every delivery still to be made by this worker, with its retry state."""
        query = (
            select(deliveries, messages.c.received_at)
            .join(messages, messages.c.id == deliveries.c.message_id)
            .where(deliveries.c.state == DeliveryState.PENDING)
            .where(self._mine(deliveries.c.worker, worker, workers))
            .order_by(deliveries.c.next_attempt_at)
        )
        with self.engine.connect() as conn:
            return [self._delivery(r) for r in conn.execute(query)]

    @staticmethod
    def _delivery(r: Any) -> Delivery:
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
        with self.engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery.id)
                .values(
                    state=state, updated_at=now, last_error=error, attempts=delivery.attempts + 1
                )
            )
            if delivery.item.kind in (DeliveryKind.DELIVER, DeliveryKind.REDIRECT):
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
            return self._insert_deliveries(conn, delivery, follow_up, now)

    def submit(
        self, raw: bytes, rcpt_tos: Sequence[str], now: float, kind: DeliveryKind
    ) -> list[Delivery]:
        """Mail the gateway writes itself (alerts to customers): stored like accepted mail."""
        message = Spooled(new_queue_id(), now, "", tuple(rcpt_tos), raw)
        domains: dict[str, list[str]] = {}
        for rcpt in rcpt_tos:
            domains.setdefault(rcpt.rpartition("@")[2].lower(), []).append(rcpt)
        items = [NewDelivery(kind, d, "", tuple(r)) for d, r in domains.items()]
        with self.durable.begin() as conn:
            conn.execute(messages.insert().values(
                id=message.id, received_at=now, client_ip=None, helo=None, mail_from="",
                rcpt_tos=json.dumps(list(rcpt_tos)), size=len(raw), raw=raw,
                state=MessageState.FILTERED, worker=0,
            ))  # fmt: skip
            return insert_deliveries(conn, message.id, now, items, now)

    def add_follow_ups(
        self, delivery: Delivery, now: float, follow_up: Sequence[NewDelivery]
    ) -> list[Delivery]:
        """Queue deliveries caused by another one (DSNs) without closing it."""
        with self.engine.begin() as conn:
            return self._insert_deliveries(conn, delivery, follow_up, now)

    def retry_later(
        self,
        delivery: Delivery,
        now: float,
        next_attempt_at: float,
        error: str,
        rcpt_tos: Sequence[str] | None = None,
    ) -> None:
        """Count a failed attempt and schedule the next; ``rcpt_tos`` narrows who is left."""
        values: dict[str, Any] = {
            "attempts": delivery.attempts + 1,
            "next_attempt_at": next_attempt_at,
            "updated_at": now,
            "last_error": error,
        }
        if rcpt_tos is not None:
            values["rcpt_tos"] = json.dumps(list(rcpt_tos))
        with self.engine.begin() as conn:
            conn.execute(update(deliveries).where(deliveries.c.id == delivery.id).values(**values))

    def queue_lengths(self) -> dict[str, int]:
        """Pending deliveries per destination domain."""
        query = (
            select(deliveries.c.domain, func.count())
            .where(deliveries.c.state == DeliveryState.PENDING)
            .group_by(deliveries.c.domain)
        )
        with self.engine.connect() as conn:
            return {domain: int(n) for domain, n in conn.execute(query)}
