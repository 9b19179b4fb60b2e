"""Registered users against actual usage: distinct recipients scanned per customer and month.

The Telstra terms bill on the users a customer registers and reserve the
right to check usage [Registered usage 3-9]: a customer whose scanned
recipients exceed the registered figure is told the revised number. The
price table bands users (up to 5, 10, 20, 50, then per user), and a change
is billed at the band's maximum, so both figures are also given as bands.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, text

from slamonitor.periods import Month

BANDS = (5, 10, 20, 50)

# json_each is SQLite's; every address is counted once per domain it was scanned for.
_DISTINCT = text(
    """
    SELECT e.domain, count(DISTINCT lower(r.value))
    FROM events AS e
    JOIN messages AS m ON m.id = e.message_id, json_each(m.rcpt_tos) AS r
    WHERE e.received_at >= :start AND e.received_at < :end
      AND substr(lower(r.value), -1 - length(e.domain)) = '@' || e.domain
      AND (:domain IS NULL OR e.domain = :domain)
    GROUP BY e.domain
    """
)


def band(users: int) -> int:
    """The price band ``users`` falls in: the band's maximum, or the count above the last."""
    return next((b for b in BANDS if users <= b), users)


def scanned_recipients(conn: Connection, month: Month, domain: str | None) -> dict[str, int]:
    """Distinct recipient addresses with mail scanned in ``month``, per domain."""
    rows = conn.execute(_DISTINCT, {"start": month.start, "end": month.end, "domain": domain})
    return {d: int(n) for d, n in rows}


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
