"""SLA monitor: proposed/confirmed windows, notices, report mailings, recipients scanned

Revision ID: 0004_sla_contract
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_sla_contract"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sla_windows") as batch_op:
        batch_op.add_column(
            sa.Column(
                "state",
                sa.String(16),
                nullable=False,
                server_default="confirmed",
                comment="proposed | confirmed | rejected: only confirmed windows exempt",
            )
        )
        batch_op.add_column(sa.Column("decided_by", sa.String(255), nullable=True))
        batch_op.add_column(sa.Column("decided_at", sa.Float(), nullable=True))
    op.create_table(
        "sla_notices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False, comment="maintenance | emergency"),
        sa.Column("domain", sa.String(255), nullable=True, comment="NULL: every customer"),
        sa.Column("start_at", sa.Float(), nullable=False),
        sa.Column("end_at", sa.Float(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sla_notices_end", "sla_notices", ["end_at"])
    op.create_table(
        "sla_report_mailings",
        sa.Column("kind", sa.String(16), nullable=False, comment="sla_monthly | antispam"),
        sa.Column(
            "domain", sa.String(255), nullable=False, comment="* for the all-customer report"
        ),
        sa.Column("label", sa.String(16), nullable=False, comment="period: 2026-11 or 2026-W47"),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "domain", "label"),
    )
    op.create_table(
        "sla_usage_recipients",
        sa.Column("month", sa.String(7), nullable=False, comment="2026-11 in the SLA time zone"),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("address", sa.String(320), nullable=False, comment="lower-cased recipient"),
        sa.PrimaryKeyConstraint("month", "domain", "address"),
    )
    op.create_table(
        "sla_usage_progress",
        sa.Column("id", sa.Integer(), nullable=False, comment="always 1"),
        sa.Column(
            "last_event_id", sa.Integer(), nullable=False, comment="events up to here are counted"
        ),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("sla_usage_progress")
    op.drop_table("sla_usage_recipients")
    op.drop_table("sla_report_mailings")
    op.drop_index("ix_sla_notices_end", table_name="sla_notices")
    op.drop_table("sla_notices")
    with op.batch_alter_table("sla_windows") as batch_op:
        batch_op.drop_column("decided_at")
        batch_op.drop_column("decided_by")
        batch_op.drop_column("state")
