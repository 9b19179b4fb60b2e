"""The gateway's tables (SQLAlchemy Core): spool, deliveries, events, quarantine, submission.

Times are UNIX seconds (REAL) so SQLite and PostgreSQL agree and the SLA
monitor can do arithmetic on them with numpy. Schema changes go through
Alembic (``store/migrations``); this module is the code's view of the head.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()


def _direction(comment: str) -> Column[str]:
    """The column for store.records.Direction, in messages and in events."""
    return Column(
        "direction", String(8), nullable=False, default="inbound", server_default="inbound",
        comment=comment,
    )  # fmt: skip


messages = Table(
    "messages",
    metadata,
    Column("id", String(32), primary_key=True, comment="queue id given in the 250 reply"),
    Column("received_at", Float, nullable=False),
    Column("client_ip", String(64)),
    Column("helo", String(255)),
    Column("mail_from", Text, nullable=False),
    Column("rcpt_tos", Text, nullable=False, comment="JSON list"),
    Column("size", Integer, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("state", String(16), nullable=False, comment="spooled | filtered"),
    Column("worker", Integer, nullable=False, default=0, comment="worker that accepted it"),
    _direction("inbound (port 25) | outbound (submission)"),
    Column("lease_owner", String(128), comment="node filtering it; NULL: released"),
    Column("lease_until", Float, nullable=False, default=0.0, comment="others may claim after"),
)
Index("ix_messages_state", messages.c.state)
Index("ix_messages_lease", messages.c.state, messages.c.lease_until)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(32), ForeignKey("messages.id"), nullable=False),
    Column("kind", String(16), nullable=False, comment="deliver | redirect | copy | dsn | release"),
    Column("domain", String(255), nullable=False, comment="domain routed to"),
    Column("mail_from", Text, nullable=False),
    Column("rcpt_tos", Text, nullable=False, comment="JSON list"),
    Column("prefix", LargeBinary, nullable=False, comment="header lines prepended on delivery"),
    Column("subject_tag", Text),
    Column("body", LargeBinary, comment="own body (DSNs); NULL: the spooled message"),
    Column("is_spam", Boolean, nullable=False, default=False),
    Column("state", String(16), nullable=False, comment="pending | delivered | bounced | expired"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("last_error", Text),
    Column("lease_owner", String(128), comment="node delivering it; NULL: released"),
    Column("lease_until", Float, nullable=False, default=0.0, comment="others may claim after"),
    Column("reclaimed", Integer, nullable=False, default=0, comment="taken over from dead nodes"),
)
Index("ix_deliveries_state", deliveries.c.state, deliveries.c.domain)
Index("ix_deliveries_lease", deliveries.c.state, deliveries.c.lease_until)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(32), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("filtered_at", Float, nullable=False),
    Column("delivered_at", Float),
    Column("action", String(16), nullable=False),
    Column("category", String(16), nullable=False),
    Column(
        "outcome", String(32), nullable=False, comment="delivered | quarantined | deleted | ..."
    ),
    Column("score", Float, nullable=False),
    Column("symbols", Text, nullable=False, comment="JSON list of hit symbols"),
    Column("hits", Text, nullable=False, comment="JSON list of hits with reasons"),
    Column("size", Integer, nullable=False),
    Column("recipients", Integer, nullable=False),
    Column("detail", Text),
    _direction("inbound | outbound: outbound virus alerts go to the sender only"),
)
Index("ix_events_received", events.c.received_at)
Index("ix_events_message", events.c.message_id, events.c.domain)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("message_id", String(32), ForeignKey("messages.id"), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("mail_from", Text, nullable=False),
    Column("rcpt_tos", Text, nullable=False, comment="JSON list"),
    Column("category", String(16), nullable=False, comment="spam | virus | content"),
    Column("never_release", Boolean, nullable=False, default=False),
    Column("score", Float, nullable=False),
    Column("hits", Text, nullable=False),
    Column("quarantined_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("state", String(16), nullable=False, comment="held | released | deleted"),
    Column("subject", Text, comment="decoded Subject, for listings and digests"),
    Column("size", Integer, comment="bytes of the held message"),
    Column("viruses", Text, comment="JSON list of virus names, for virus quarantine"),
)
Index("ix_quarantine_domain", quarantine.c.domain, quarantine.c.state)

job_leases = Table(
    "job_leases",
    metadata,
    Column("name", String(32), primary_key=True, comment="store.leases.Job"),
    Column("owner", String(128), comment="node running it; NULL: free"),
    Column("lease_until", Float, nullable=False, default=0.0),
)

submission_users = Table(
    "submission_users",
    metadata,
    Column("login", String(320), primary_key=True, comment="the AUTH user name"),
    Column("domain", String(255), nullable=False, comment="registered domain it sends for"),
    Column("password_hash", String(255), nullable=False, comment="scrypt$n$r$p$salt$hash"),
    Column("created_at", Float, nullable=False),
)
