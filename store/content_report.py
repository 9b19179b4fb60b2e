"""Content-control results by rule and by user, counted from the events' hits.

The Telstra terms offer content reports "organised by both rule and by user"
[Content control 10-11]. A ``CONTENT_RULE`` hit names its rule and the
recipients it applied to (the symbol stays one metric label); this module
counts them for the REST report and for the mailed report, so both say the same.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from store.schema import events

CONTENT_SYMBOL = "CONTENT_RULE"
UNNAMED = "(unnamed)"
"""The rule of a hit recorded before hits named their rule."""


@dataclass
class ContentCounts:
    """Messages each rule matched, overall and per recipient."""

    by_rule: Counter[str] = field(default_factory=Counter)
    by_user: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, hits: Iterable[Mapping[str, Any]]) -> None:
        """Count one message's hits: each rule once per message, and once per recipient."""
        rules: dict[str, set[str]] = {}
        for hit in hits:
            if hit.get("symbol") == CONTENT_SYMBOL:
                rule = hit.get("rule") or UNNAMED
                rules.setdefault(rule, set()).update(hit.get("recipients") or ())
        for rule, recipients in rules.items():
            self.by_rule[rule] += 1
            for recipient in recipients:
                self.by_user.setdefault(recipient, Counter())[rule] += 1

    def user_table(self) -> dict[str, dict[str, int]]:
        """``by_user`` as plain, sorted dicts: recipient -> rule -> messages."""
        return {user: dict(sorted(rules.items())) for user, rules in sorted(self.by_user.items())}


def content_counts(
    conn: Connection, domain: str | None, since: float, until: float
) -> ContentCounts:
    """Counts over the events received in [since, until), of one domain or (None) all."""
    query = select(events.c.hits).where(
        events.c.received_at >= since,
        events.c.received_at < until,
        events.c.symbols.contains(CONTENT_SYMBOL),
    )
    if domain is not None:
        query = query.where(events.c.domain == domain)
    counts = ContentCounts()
    for (hits,) in conn.execute(query):
        counts.add(json.loads(hits))
    return counts
