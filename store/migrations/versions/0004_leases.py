"""leases: messages and deliveries leased to a node, named jobs; deliveries lose ``worker``

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JOBS = ("purge", "digests")  # store.leases.Job, frozen here as the migration saw it


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(128), nullable=True))
        batch_op.add_column(
            sa.Column("lease_until", sa.Float(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(128), nullable=True))
        batch_op.add_column(
            sa.Column("lease_until", sa.Float(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("reclaimed", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.drop_column("worker")
        batch_op.create_index("ix_deliveries_lease", ["state", "lease_until"])
    op.create_index("ix_messages_lease", "messages", ["state", "lease_until"])
    jobs = op.create_table(
        "job_leases",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=False, server_default="0"),
    )
    op.bulk_insert(jobs, [{"name": name, "owner": None, "lease_until": 0.0} for name in JOBS])


def downgrade() -> None:
    op.drop_table("job_leases")
    op.drop_index("ix_messages_lease", "messages")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_index("ix_deliveries_lease")
        batch_op.add_column(sa.Column("worker", sa.Integer(), nullable=False, server_default="0"))
        batch_op.drop_column("reclaimed")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_owner")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_owner")
