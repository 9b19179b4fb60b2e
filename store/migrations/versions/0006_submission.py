"""submission: accounts that may send mail out, and the direction of every message and event

Revision ID: 0006_submission
Revises: 0005_content_settings
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_submission"
down_revision = "0005_content_settings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "submission_users",
        sa.Column("login", sa.String(320), primary_key=True),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    for table in ("messages", "events"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(
                sa.Column("direction", sa.String(8), nullable=False, server_default="inbound")
            )


def downgrade() -> None:
    for table in ("events", "messages"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("direction")
    op.drop_table("submission_users")
