"""Sender lists customers manage over the API, and the snapshot the pipeline reads.

Entries live in the store; the pipeline sees them as facts
(``filters.lists.DomainLists``), merged with the policy file's lists, so a
change takes effect on the next message without reloading the policy.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from filters.lists import DomainLists
from filters.policy import Lists
from store.quarantine_tables import list_entries

SCOPES = ("user", "group", "domain")
KINDS = ("whitelist", "blacklist")


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    domain: str
    scope: str
    owner: str
    kind: str
    value: str
    created_at: float
    created_by: str


def add(
    conn: Connection,
    *,
    domain: str,
    scope: str,
    owner: str,
    kind: str,
    value: str,
    by: str,
    now: float,
) -> Entry:
    """Store an entry; ``value`` must already be validated (``Lists`` normalises it)."""
    values = {"domain": domain, "scope": scope, "owner": owner, "kind": kind, "value": value,
              "created_at": now, "created_by": by}  # fmt: skip
    result = conn.execute(list_entries.insert().values(**values))
    key = result.inserted_primary_key
    assert key is not None
    return Entry(id=int(key[0]), **values)  # type: ignore[arg-type]


def find(conn: Connection, domains: list[str] | None) -> list[Entry]:
    query = select(list_entries).order_by(list_entries.c.id)
    if domains is not None:
        query = query.where(list_entries.c.domain.in_(domains))
    return [Entry(**r._mapping) for r in conn.execute(query)]


def get(conn: Connection, entry_id: int) -> Entry | None:
    row = conn.execute(select(list_entries).where(list_entries.c.id == entry_id)).first()
    return Entry(**row._mapping) if row is not None else None


def remove(conn: Connection, entry_id: int) -> None:
    conn.execute(delete(list_entries).where(list_entries.c.id == entry_id))


def version(conn: Connection) -> tuple[int, int]:
    """Changes whenever an entry is added or removed: (count, highest id)."""
    row = conn.execute(select(func.count(), func.max(list_entries.c.id))).one()
    return int(row[0]), int(row[1] or 0)


def snapshot(conn: Connection) -> dict[str, DomainLists]:
    """Every entry, grouped the way the pipeline merges them."""
    grouped: dict[str, dict[tuple[str, str], dict[str, list[str]]]] = defaultdict(dict)
    for entry in find(conn, None):
        lists = grouped[entry.domain].setdefault((entry.scope, entry.owner), {k: [] for k in KINDS})
        lists[entry.kind].append(entry.value)
    out = {}
    for domain, scopes in grouped.items():
        made = {
            key: Lists(whitelist=lists["whitelist"], blacklist=lists["blacklist"])
            for key, lists in scopes.items()
        }
        out[domain] = DomainLists(
            domain=made.get(("domain", domain), Lists()),
            users={owner: ls for (scope, owner), ls in made.items() if scope == "user"},
            groups={owner: ls for (scope, owner), ls in made.items() if scope == "group"},
        )
    return out
