"""training labels name their customer domain and who gave them, for online-learning limits

Revision ID: 0007_training_labels
Revises: 0006_submission
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_training_labels"
down_revision = "0006_submission"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_labels") as batch_op:
        batch_op.add_column(sa.Column("domain", sa.String(255), nullable=True))
        batch_op.add_column(sa.Column("created_by", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_labels") as batch_op:
        batch_op.drop_column("created_by")
        batch_op.drop_column("domain")
