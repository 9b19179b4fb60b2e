"""Customer reports: what happened to a domain's mail in a date range, by action and stage.

Content rules are counted by rule and by recipient (``store.content_report``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Connection

from store.content_report import ContentCounts
from store.schema import events


@dataclass
class Report:
    domain: str
    since: float
    until: float
    messages: int = 0
    by_action: Counter[str] = field(default_factory=Counter)
    by_outcome: Counter[str] = field(default_factory=Counter)
    by_stage: Counter[str] = field(default_factory=Counter)
    by_symbol: Counter[str] = field(default_factory=Counter)
    content: ContentCounts = field(default_factory=ContentCounts)


def build(conn: Connection, domain: str, since: float, until: float) -> Report:
    """Counts over the domain's events received in [since, until)."""
    report = Report(domain, since, until)
    rows = conn.execute(
        select(events.c.action, events.c.outcome, events.c.hits)
        .where(events.c.domain == domain)
        .where(events.c.received_at >= since, events.c.received_at < until)
    )  # fmt: skip
    for action, outcome, hits in rows:
        report.messages += 1
        report.by_action[action] += 1
        report.by_outcome[outcome] += 1
        found = json.loads(hits)
        report.by_stage.update({h["stage"] for h in found})
        report.by_symbol.update({h["symbol"] for h in found})
        report.content.add(found)
    return report
