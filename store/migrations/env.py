"""Alembic environment: runs on the connection the store hands over, never from a URL here."""

from __future__ import annotations

from alembic import context

import store.quarantine_tables
import store.sla_tables  # noqa: F401
from store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
