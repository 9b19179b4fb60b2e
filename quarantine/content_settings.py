"""Content rules and spam stage actions a customer sets over REST, and what the pipeline reads.

Like the sender lists, they live in the store and reach the pipeline as
facts (``filters.lists.DomainLists``) merged with the policy file, so a
change applies to the next message without reloading the policy. One row
per domain, replaced whole by each change; ``revision`` moves on every
change so a cached snapshot knows when it is stale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.engine import Connection

from filters.policy import ContentRule
from filters.verdict import Action
from store.quarantine_tables import content_settings


@dataclass(frozen=True, slots=True)
class Settings:
    """One domain's settings as stored; an unset domain has no rules and no actions."""

    domain: str
    content_rules: tuple[ContentRule, ...] = ()
    actions: dict[str, Action] = field(default_factory=dict)
    updated_at: float | None = None
    updated_by: str | None = None


def _settings(row: Row[Any]) -> Settings:
    mapping = row._mapping
    return Settings(
        domain=mapping["domain"],
        content_rules=tuple(
            ContentRule.model_validate(r) for r in json.loads(mapping["content_rules"])
        ),
        actions={stage: Action.parse(a) for stage, a in json.loads(mapping["actions"]).items()},
        updated_at=mapping["updated_at"],
        updated_by=mapping["updated_by"],
    )


def get(conn: Connection, domain: str) -> Settings:
    row = conn.execute(select(content_settings).where(content_settings.c.domain == domain)).first()
    return Settings(domain) if row is None else _settings(row)


def put(
    conn: Connection,
    domain: str,
    rules: list[ContentRule],
    actions: dict[str, Action],
    *,
    by: str,
    now: float,
) -> Settings:
    """Replace the domain's settings; the values must already be validated and within bounds."""
    latest = conn.execute(select(func.max(content_settings.c.revision))).scalar_one()
    values = {
        "content_rules": json.dumps([r.model_dump(mode="json", exclude_none=True) for r in rules]),
        "actions": json.dumps({stage: a.label for stage, a in actions.items()}),
        "revision": int(latest or 0) + 1,
        "updated_at": now,
        "updated_by": by,
    }
    table = content_settings
    if conn.execute(table.update().where(table.c.domain == domain).values(**values)).rowcount == 0:
        conn.execute(table.insert().values(domain=domain, **values))
    return get(conn, domain)


def version(conn: Connection) -> tuple[int, int]:
    """Changes whenever a domain's settings change: (rows, highest revision)."""
    row = conn.execute(select(func.count(), func.max(content_settings.c.revision))).one()
    return int(row[0]), int(row[1] or 0)


def snapshot(conn: Connection) -> dict[str, Settings]:
    """Every domain's settings, for the pipeline."""
    return {s.domain: s for s in map(_settings, conn.execute(select(content_settings)))}
