"""Accounting for the chaos run: read the store and the sink, and say where every message went.

A stamped message acknowledged with 250 must have ended: delivered (at the
sink), held (quarantined or deleted by policy) or bounced; otherwise it is
lost. Rows still spooled or pending after the drain are stuck. Copies of one
id at the sink are gateway redeliveries (same queue id) or client retries
(a second queue id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadtest.chaosparts import CountingSink, Disk, chaos_id

if TYPE_CHECKING:
    from loadtest.chaos import ChaosConfig, RunLog


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 1)


def _store_rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return list(conn.execute(query))


async def drain(db: Path, timeout: float) -> dict[str, int]:
    """Wait until nothing is spooled or pending; returns what still waits after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        spooled = _store_rows(db, "SELECT count(*) FROM messages WHERE state = 'spooled'")[0][0]
        pending = _store_rows(db, "SELECT count(*) FROM deliveries WHERE state = 'pending'")[0][0]
        if (spooled == 0 and pending == 0) or time.monotonic() > deadline:
            return {"spooled": int(spooled), "pending": int(pending)}
        await asyncio.sleep(0.5)


def ended_in_store(db: Path) -> dict[str, set[int]]:
    """Chaos ids by final outcome other than delivery (held, deleted, bounced, expired)."""
    rows = _store_rows(
        db,
        "SELECT e.outcome, m.raw FROM events e JOIN messages m ON m.id = e.message_id "
        "WHERE e.outcome IN ('quarantined', 'deleted', 'bounced', 'expired')",
    )
    found: dict[str, set[int]] = {}
    for outcome, raw in rows:
        cid = chaos_id(bytes(raw))
        if cid is not None:
            found.setdefault(str(outcome), set()).add(cid)
    return found


def report(
    config: ChaosConfig, run: RunLog, sink: CountingSink, ended: dict[str, set[int]],
    stuck: dict[str, int], sent_seconds: float, total_seconds: float, disk: Disk,
) -> dict[str, Any]:  # fmt: skip
    answered = set(run.answered)
    delivered = set(sink.by_id)
    held = ended.get("quarantined", set()) | ended.get("deleted", set())
    bounced = ended.get("bounced", set()) | ended.get("expired", set())
    lost = sorted(answered - delivered - held - bounced)
    redelivered = client_retried = 0
    for arrivals in sink.by_id.values():
        if len(arrivals) > 1:
            qids = [a.queue_id for a in arrivals]
            redelivered += len(qids) - len(set(qids))
            client_retried += len(set(qids)) - 1
    waits = [sink.by_id[i][0].at - run.answered[i] for i in delivered & answered]
    kills = [e for e in run.events if e["event"].startswith("kill") and "skipped" not in e]
    return {
        "messages": config.count,
        "answered_250": len(answered),
        "refused_5xx": len(run.refused),
        "refused_by_code": {
            str(c): list(run.refused.values()).count(c) for c in sorted(set(run.refused.values()))
        },
        "delivered": len(delivered),
        "held": len(held),
        "bounced_or_expired": len(bounced),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "stuck_rows": stuck,
        "delivered_twice": {"gateway_redelivery": redelivered, "client_retry": client_retried},
        "longest_wait_after_250_seconds": round(max(waits, default=0.0), 3),
        "longest_client_wait_for_250_seconds": round(run.client_wait, 3),
        "kills": {
            "gateway": sum(e["event"] == "kill_gateway" for e in kills),
            "filter": sum(e["event"] == "kill_filter" for e in kills),
        },
        "temporary_replies": run.temporary,
        "disk_full": "tmpfs shrunk to its used size" if disk.available else f"skipped: {disk.why}",
        "metrics_scrape_p95_ms": {
            "idle": p95(run.scrape_idle),
            "under_load": p95(run.scrape_load),
            "scrapes_under_load": len(run.scrape_load),
        },
        "events": run.events,
        "sending_seconds": round(sent_seconds, 1),
        "total_seconds": round(total_seconds, 1),
    }


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
