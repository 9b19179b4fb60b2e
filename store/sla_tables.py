"""The SLA monitor's tables, on the gateway's one MetaData so Alembic and tests see every table.

Times are UNIX seconds (REAL), like ``events``; revision ``0002`` creates them.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, String, Table, Text, UniqueConstraint

from store.schema import metadata

services = Table(
    "sla_services",
    metadata,
    Column("domain", String(255), primary_key=True),
    Column(
        "started_at",
        Float,
        nullable=False,
        comment="service start: the first 30 days are not measured",
    ),
)

windows = Table(
    "sla_windows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "kind",
        String(16),
        nullable=False,
        comment="dos | maintenance | suspension | customer_fault | beyond_control",
    ),
    Column("domain", String(255), comment="NULL: every domain"),
    Column("start_at", Float, nullable=False),
    Column("end_at", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    Column(
        "state",
        String(16),
        nullable=False,
        server_default="confirmed",
        comment="proposed | confirmed | rejected: only confirmed windows exempt",
    ),
    Column("decided_by", String(255)),
    Column("decided_at", Float),
)
Index("ix_sla_windows_time", windows.c.start_at, windows.c.end_at)

claims = Table(
    "sla_claims",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(4), nullable=False, comment="fp | fn"),
    Column("message_id", String(32), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("received_at", Float, nullable=False, comment="of the message: the month it counts in"),
    Column(
        "state", String(16), nullable=False, comment="claimed | confirmed | rejected | withdrawn"
    ),
    Column("source", String(16), nullable=False, comment="release | customer | operator"),
    Column("reason", Text),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("decided_by", String(255)),
    Column("decided_at", Float),
    UniqueConstraint("kind", "message_id", "domain", name="uq_sla_claims_message"),
)
Index("ix_sla_claims_received", claims.c.received_at)

labels = Table(
    "sla_labels",
    metadata,
    Column("message_id", String(32), primary_key=True),
    Column("label", String(8), nullable=False, comment="ham | spam (a replayed corpus)"),
)

tickets = Table(
    "sla_tickets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("domain", String(255), nullable=False),
    Column("priority", String(32), nullable=False),
    Column("subject", Text, nullable=False),
    Column("opened_by", String(255), nullable=False),
    Column("opened_at", Float, nullable=False),
    Column("first_response_at", Float),
    Column("responded_by", String(255)),
)
Index("ix_sla_tickets_opened", tickets.c.opened_at)

virus_releases = Table(
    "sla_virus_releases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(32), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("authorised_by", String(255), nullable=False),
    Column("authorised_at", Float, nullable=False),
    Column("released_at", Float),
)
Index("ix_sla_virus_releases_authorised", virus_releases.c.authorised_at)

availability = Table(
    "sla_availability",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("up", Boolean, nullable=False),
    Column("detail", Text),
)
Index("ix_sla_availability_at", availability.c.at)

queue_samples = Table(
    "sla_queue_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("domain", String(255), nullable=False),
    Column("length", Integer, nullable=False),
)
Index("ix_sla_queue_samples_at", queue_samples.c.at, queue_samples.c.domain)

probes = Table(
    "sla_probes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("domain", String(255), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("detail", Text, nullable=False),
)
Index("ix_sla_probes_at", probes.c.at)

alerts = Table(
    "sla_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column(
        "alert", String(32), nullable=False, comment="queue_rising | receiving_server_down | ..."
    ),
    Column("domain", String(255)),
    Column("state", String(16), nullable=False, comment="firing | resolved"),
    Column("detail", Text, nullable=False),
)
Index("ix_sla_alerts_at", alerts.c.at)

notices = Table(
    "sla_notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False, comment="maintenance | emergency"),
    Column("domain", String(255), comment="NULL: every customer"),
    Column("start_at", Float, nullable=False),
    Column("end_at", Float, nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_sla_notices_end", notices.c.end_at)

report_mailings = Table(
    "sla_report_mailings",
    metadata,
    Column("kind", String(16), primary_key=True, comment="sla_monthly | antispam"),
    Column("domain", String(255), primary_key=True, comment="* for the all-customer report"),
    Column("label", String(16), primary_key=True, comment="period: 2026-11 or 2026-W47"),
    Column("recipient", String(320), nullable=False),
    Column("sent_at", Float, nullable=False),
)

usage_recipients = Table(
    "sla_usage_recipients",
    metadata,
    Column("month", String(7), primary_key=True, comment="2026-11 in the SLA time zone"),
    Column("domain", String(255), primary_key=True),
    Column("address", String(320), primary_key=True, comment="lower-cased recipient"),
)

usage_progress = Table(
    "sla_usage_progress",
    metadata,
    Column("id", Integer, primary_key=True, comment="always 1"),
    Column("last_event_id", Integer, nullable=False, comment="events up to here are counted"),
)
