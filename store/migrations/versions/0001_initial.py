"""initial schema: spool, deliveries, events, quarantine

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("filtered_at", sa.Float(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column(
            "outcome",
            sa.String(length=32),
            nullable=False,
            comment="delivered | quarantined | deleted | ...",
        ),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("symbols", sa.Text(), nullable=False, comment="JSON list of hit symbols"),
        sa.Column("hits", sa.Text(), nullable=False, comment="JSON list of hits with reasons"),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_message", ["message_id", "domain"], unique=False)
        batch_op.create_index("ix_events_received", ["received_at"], unique=False)

    op.create_table(
        "messages",
        sa.Column(
            "id", sa.String(length=32), nullable=False, comment="queue id given in the 250 reply"
        ),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("helo", sa.String(length=255), nullable=True),
        sa.Column("mail_from", sa.Text(), nullable=False),
        sa.Column("rcpt_tos", sa.Text(), nullable=False, comment="JSON list"),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False, comment="spooled | filtered"),
        sa.Column("worker", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_state", ["state"], unique=False)

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column(
            "kind",
            sa.String(length=16),
            nullable=False,
            comment="deliver | redirect | copy | dsn | release",
        ),
        sa.Column("domain", sa.String(length=255), nullable=False, comment="domain routed to"),
        sa.Column("mail_from", sa.Text(), nullable=False),
        sa.Column("rcpt_tos", sa.Text(), nullable=False, comment="JSON list"),
        sa.Column(
            "prefix", sa.LargeBinary(), nullable=False, comment="header lines prepended on delivery"
        ),
        sa.Column("subject_tag", sa.Text(), nullable=True),
        sa.Column(
            "body",
            sa.LargeBinary(),
            nullable=True,
            comment="own body (DSNs); NULL: the spooled message",
        ),
        sa.Column("is_spam", sa.Boolean(), nullable=False),
        sa.Column(
            "state",
            sa.String(length=16),
            nullable=False,
            comment="pending | delivered | bounced | expired",
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("worker", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_state", ["state", "domain"], unique=False)

    op.create_table(
        "quarantine",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("mail_from", sa.Text(), nullable=False),
        sa.Column("rcpt_tos", sa.Text(), nullable=False, comment="JSON list"),
        sa.Column(
            "category", sa.String(length=16), nullable=False, comment="spam | virus | content"
        ),
        sa.Column("never_release", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("hits", sa.Text(), nullable=False),
        sa.Column("quarantined_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column(
            "state", sa.String(length=16), nullable=False, comment="held | released | deleted"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index("ix_quarantine_domain", ["domain", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index("ix_quarantine_domain")

    op.drop_table("quarantine")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_state")

    op.drop_table("deliveries")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_state")

    op.drop_table("messages")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_received")
        batch_op.drop_index("ix_events_message")

    op.drop_table("events")
