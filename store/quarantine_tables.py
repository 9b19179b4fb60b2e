"""Quarantine tables beside the gateway's: recipients of held mail, accounts, API tokens,
customer-managed sender lists, virus release requests, used digest links, training labels,
and the content rules and stage actions customers manage over REST.

They share ``store.schema.metadata`` so one Alembic history covers the store.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from store.schema import metadata

held_recipients = Table(
    "held_recipients",
    metadata,
    Column(
        "held_id", String(32), ForeignKey("quarantine.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("address", String(320), primary_key=True),
    Column("domain", String(255), nullable=False),
)
Index("ix_held_recipients_address", held_recipients.c.address)

accounts = Table(
    "accounts",
    metadata,
    Column("address", String(320), primary_key=True, comment="the recipient"),
    Column("domain", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("notify", String(8), nullable=False, comment="daily | hours | never"),
    Column("every_hours", Integer, comment="with notify = hours"),
    Column("last_digest_at", Float, comment="digest lists mail held after this"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("operator", Boolean, nullable=False),
    Column("domains", Text, nullable=False, comment="JSON list; customers only"),
    Column("token_hash", String(64), nullable=False, unique=True, comment="sha256 hex"),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)

list_entries = Table(
    "list_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("domain", String(255), nullable=False),
    Column("scope", String(8), nullable=False, comment="user | group | domain"),
    Column("owner", String(320), nullable=False, comment="address, group name or domain"),
    Column("kind", String(16), nullable=False, comment="whitelist | blacklist"),
    Column("value", String(320), nullable=False, comment="sender address or domain"),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(255), nullable=False),
)
Index("ix_list_entries_domain", list_entries.c.domain)

release_requests = Table(
    "release_requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("held_id", String(32), ForeignKey("quarantine.id", ondelete="CASCADE"), nullable=False),
    Column("requested_by", String(255), nullable=False),
    Column("requested_at", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("targets", Text, nullable=False, comment="JSON list"),
    Column("status", String(16), nullable=False, comment="pending | refused | released"),
    Column("decided_by", String(255)),
    Column("decided_at", Float),
    Column("decision", Text),
)

link_uses = Table(
    "link_uses",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("used_at", Float, nullable=False),
)

training_labels = Table(
    "training_labels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(32), nullable=False),
    Column("label", String(8), nullable=False, comment="ham | spam"),
    Column("source", String(32), nullable=False, comment="release | report"),
    Column("created_at", Float, nullable=False),
    Column("domain", String(255), comment="customer domain whose release or claim it was"),
    Column("created_by", String(255), comment="who released it or confirmed the claim"),
)

content_settings = Table(
    "content_settings",
    metadata,
    Column("domain", String(255), primary_key=True),
    Column("content_rules", Text, nullable=False, comment="JSON list of content rules"),
    Column("actions", Text, nullable=False, comment="JSON object: spam stage -> action"),
    Column("revision", Integer, nullable=False, comment="highest of all rows moves on each change"),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(255), nullable=False),
)
