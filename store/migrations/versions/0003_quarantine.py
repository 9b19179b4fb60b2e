"""quarantine: held-mail recipients, accounts, API tokens, sender lists, release requests

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = ("quarantine",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch_op:
        batch_op.add_column(sa.Column("subject", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("size", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("viruses", sa.Text(), nullable=True))
    op.create_table(
        "held_recipients",
        sa.Column("held_id", sa.String(32), sa.ForeignKey("quarantine.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("domain", sa.String(255), nullable=False),
    )  # fmt: skip
    op.create_index("ix_held_recipients_address", "held_recipients", ["address"])
    op.create_table(
        "accounts",
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("notify", sa.String(8), nullable=False),
        sa.Column("every_hours", sa.Integer(), nullable=True),
        sa.Column("last_digest_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("operator", sa.Boolean(), nullable=False),
        sa.Column("domains", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "list_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(320), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    )
    op.create_index("ix_list_entries_domain", "list_entries", ["domain"])
    op.create_table(
        "release_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("held_id", sa.String(32), sa.ForeignKey("quarantine.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(255), nullable=True),
        sa.Column("decided_at", sa.Float(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
    )  # fmt: skip
    op.create_table(
        "link_uses",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("used_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "training_labels",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("label", sa.String(8), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    for table in ("training_labels", "link_uses", "release_requests", "list_entries",
                  "api_tokens", "accounts", "held_recipients"):  # fmt: skip
        op.drop_table(table)
    with op.batch_alter_table("quarantine") as batch_op:
        batch_op.drop_column("viruses")
        batch_op.drop_column("size")
        batch_op.drop_column("subject")
