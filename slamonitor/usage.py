"""Registered users against actual usage: distinct recipients scanned per customer and month.

The Telstra terms bill on the users a customer registers and reserve the
right to check usage [Registered usage 3-9]: a customer whose scanned
recipients exceed the registered figure is told the revised number. The
price table bands users (up to 5, 10, 20, 50, then per user), and a change
is billed at the band's maximum, so both figures are also given as bands.

Counting distinct addresses over a month of events at report time would
join every event with its message (about 30 s for 10 million events), so
``catch_up`` folds new events into ``sla_usage_recipients`` (month, domain,
address) once each, remembering the last event id; the gateway runs it every
few minutes (``track``), the CLI before a report, and reports read the small
table.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping

from sqlalchemy import Connection, Engine, func, select

from slamonitor.periods import Month
from slamonitor.probe import Sleep, sleep
from store.engines import insert_new
from store.schema import events, messages
from store.sla_tables import usage_progress, usage_recipients

log = logging.getLogger("mailmoat.sla.usage")

BANDS = (5, 10, 20, 50)
BATCH = 20_000


def band(users: int) -> int:
    """The price band ``users`` falls in: the band's maximum, or the count above the last."""
    return next((b for b in BANDS if users <= b), users)


def _fold(conn: Connection, tz: str, batch: int) -> int:
    """One batch of new events into the recipients table; returns how many were read."""
    last = conn.execute(select(usage_progress.c.last_event_id)).scalar() or 0
    rows = conn.execute(
        select(events.c.id, events.c.domain, events.c.received_at, messages.c.rcpt_tos)
        .select_from(events.outerjoin(messages, messages.c.id == events.c.message_id))
        .where(events.c.id > last, events.c.direction == "inbound")  # users are who get mail
        .order_by(events.c.id)
        .limit(batch)
    ).all()
    if not rows:
        return 0
    months: dict[int, str] = {}  # per quarter hour: every zone's offset is a multiple of 15 min
    seen: set[tuple[str, str, str]] = set()
    for _, domain, received_at, rcpt_tos in rows:
        if rcpt_tos is None:
            continue  # the message row is gone: nothing to count
        quarter = int(received_at // 900)
        label = months.get(quarter)
        if label is None:
            label = months[quarter] = Month.containing(received_at, tz).label
        for address in json.loads(rcpt_tos):
            address = address.lower()
            if address.rpartition("@")[2] == domain:
                seen.add((label, domain, address))
    if seen:
        conn.execute(
            insert_new(conn, usage_recipients),
            [{"month": m, "domain": d, "address": a} for m, d, a in seen],
        )
    newest = rows[-1][0]
    if last:
        conn.execute(usage_progress.update().values(last_event_id=newest))
    else:
        conn.execute(usage_progress.insert().values(id=1, last_event_id=newest))
    return len(rows)


def catch_up(engine: Engine, tz: str, batch: int = BATCH) -> int:
    """Fold every event not yet counted, one transaction per batch; returns events read."""
    total = 0
    while True:
        with engine.begin() as conn:
            done = _fold(conn, tz, batch)
        if not done:
            return total
        total += done


async def track(engine: Engine, tz: str, interval: float = 300.0, sleeper: Sleep = sleep) -> None:
    """Keep the recipients table current until cancelled (the gateway runs this)."""
    while True:
        try:
            await asyncio.to_thread(catch_up, engine, tz)
        except Exception:  # a busy or failing store: the next round catches up, the task lives
            log.exception("usage catch-up failed; next try in %.0f s", interval)
        await sleeper(interval)


def scanned_recipients(conn: Connection, month: Month, domain: str | None) -> dict[str, int]:
    """Distinct recipient addresses with mail scanned in ``month``, per domain."""
    query = (
        select(usage_recipients.c.domain, func.count())
        .where(usage_recipients.c.month == month.label)
        .group_by(usage_recipients.c.domain)
    )
    if domain is not None:
        query = query.where(usage_recipients.c.domain == domain)
    return {d: int(n) for d, n in conn.execute(query)}


def measure(
    conn: Connection, month: Month, domain: str | None, registered: Mapping[str, int]
) -> dict[str, dict[str, object]]:
    """Per domain (every domain registered or with mail): registered, actual, over or not."""
    actual = scanned_recipients(conn, month, domain)
    names = set(actual) | ({domain} if domain is not None else set(registered))
    result: dict[str, dict[str, object]] = {}
    for name in sorted(names):
        users = registered.get(name)
        used = actual.get(name, 0)
        result[name] = {
            "registered_users": users,
            "scanned_recipients": used,
            "registered_band": None if users is None else band(users),
            "actual_band": band(used),
            "exceeds": None if users is None else used > users,
        }
    return result
