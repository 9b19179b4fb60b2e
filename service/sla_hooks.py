"""What the SLA monitor learns from the quarantine: releases as FP claims, virus releases timed.

Called inside the release transaction, so the claim and the release are
recorded together or not at all.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Connection

from quarantine.held import HeldMessage
from slamonitor import claims, virus_release

log = logging.getLogger("mailmoat.sla")


def record_release(
    conn: Connection, message: HeldMessage, by: str, now: float, requested_at: float | None
) -> None:
    """Spam released: a false-positive claim (SPEC 4). Virus released: the 8-business-hour clock,
    from the customer's request to the release (SPEC 3 [9])."""
    summary = message.summary
    if summary.category == "virus":
        virus_release.record_authorised(
            conn, message.message_id, summary.domain, by, requested_at or now
        )
        virus_release.record_released(conn, message.message_id, summary.domain, now)
        return
    if summary.category != "spam":
        return
    try:
        claims.record_fp_claim(conn, message.message_id, summary.domain, by, now)
    except claims.ClaimError as exc:  # a release must not fail for the monitor's bookkeeping
        log.warning("no false-positive claim for %s: %s", message.message_id, exc)
