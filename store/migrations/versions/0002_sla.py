"""SLA monitor: services, exclusion windows, claims, labels, tickets, releases, probes, alerts

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sla_alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column(
            "alert",
            sa.String(length=32),
            nullable=False,
            comment="queue_rising | receiving_server_down | ...",
        ),
        sa.Column("domain", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False, comment="firing | resolved"),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sla_alerts", schema=None) as batch_op:
        batch_op.create_index("ix_sla_alerts_at", ["at"], unique=False)

    op.create_table(
        "sla_availability",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("up", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sla_availability", schema=None) as batch_op:
        batch_op.create_index("ix_sla_availability_at", ["at"], unique=False)

    op.create_table(
        "sla_claims",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=4), nullable=False, comment="fp | fn"),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column(
            "received_at",
            sa.Float(),
            nullable=False,
            comment="of the message: the month it counts in",
        ),
        sa.Column(
            "state",
            sa.String(length=16),
            nullable=False,
            comment="claimed | confirmed | rejected | withdrawn",
        ),
        sa.Column(
            "source", sa.String(length=16), nullable=False, comment="release | customer | operator"
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("decided_by", sa.String(length=255), nullable=True),
        sa.Column("decided_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "message_id", "domain", name="uq_sla_claims_message"),
    )
    with op.batch_alter_table("sla_claims", schema=None) as batch_op:
        batch_op.create_index("ix_sla_claims_received", ["received_at"], unique=False)

    op.create_table(
        "sla_labels",
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column(
            "label", sa.String(length=8), nullable=False, comment="ham | spam (a replayed corpus)"
        ),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_table(
        "sla_probes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sla_probes", schema=None) as batch_op:
        batch_op.create_index("ix_sla_probes_at", ["at"], unique=False)

    op.create_table(
        "sla_queue_samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sla_queue_samples", schema=None) as batch_op:
        batch_op.create_index("ix_sla_queue_samples_at", ["at", "domain"], unique=False)

    op.create_table(
        "sla_services",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column(
            "started_at",
            sa.Float(),
            nullable=False,
            comment="service start: the first 30 days are not measured",
        ),
        sa.PrimaryKeyConstraint("domain"),
    )
    op.create_table(
        "sla_tickets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("priority", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("opened_by", sa.String(length=255), nullable=False),
        sa.Column("opened_at", sa.Float(), nullable=False),
        sa.Column("first_response_at", sa.Float(), nullable=True),
        sa.Column("responded_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sla_tickets", schema=None) as batch_op:
        batch_op.create_index("ix_sla_tickets_opened", ["opened_at"], unique=False)

    op.create_table(
        "sla_virus_releases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("authorised_by", sa.String(length=255), nullable=False),
        sa.Column("authorised_at", sa.Float(), nullable=False),
        sa.Column("released_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sla_virus_releases", schema=None) as batch_op:
        batch_op.create_index("ix_sla_virus_releases_authorised", ["authorised_at"], unique=False)

    op.create_table(
        "sla_windows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column(
            "kind", sa.String(length=16), nullable=False, comment="dos | maintenance | suspension"
        ),
        sa.Column("domain", sa.String(length=255), nullable=True, comment="NULL: every domain"),
        sa.Column("start_at", sa.Float(), nullable=False),
        sa.Column("end_at", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sla_windows", schema=None) as batch_op:
        batch_op.create_index("ix_sla_windows_time", ["start_at", "end_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sla_windows", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_windows_time")

    op.drop_table("sla_windows")
    with op.batch_alter_table("sla_virus_releases", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_virus_releases_authorised")

    op.drop_table("sla_virus_releases")
    with op.batch_alter_table("sla_tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_tickets_opened")

    op.drop_table("sla_tickets")
    op.drop_table("sla_services")
    with op.batch_alter_table("sla_queue_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_queue_samples_at")

    op.drop_table("sla_queue_samples")
    with op.batch_alter_table("sla_probes", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_probes_at")

    op.drop_table("sla_probes")
    op.drop_table("sla_labels")
    with op.batch_alter_table("sla_claims", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_claims_received")

    op.drop_table("sla_claims")
    with op.batch_alter_table("sla_availability", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_availability_at")

    op.drop_table("sla_availability")
    with op.batch_alter_table("sla_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_alerts_at")

    op.drop_table("sla_alerts")
