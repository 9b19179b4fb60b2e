"""What the end-to-end bench measures per row, read from the client, the sink and the store.

Latency percentiles are in milliseconds. A message the Python sender got a
250 for is *delivered* when its trace reached the sink, *held* when the
gateway's events say it was quarantined or deleted, and *missing* otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from loadtest.sender import SendReport
from loadtest.sink import TraceSink

console = Console(width=None if sys.stdout.isatty() else 132)
HELD = ("quarantined", "deleted")
TARGET_RATIO = 0.5  # gateway vs bare aiosmtpd, same client (issue 3)
SCALES = 1.2  # --workers 2 "scales" when it is at least this much faster than one worker


@dataclass
class Row:
    name: str
    server: str
    client: str
    messages: int
    accepted: int
    seconds: float
    errors: Counter[str] = field(default_factory=Counter)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return f"{self.name} <- {self.client}: {self.rate:.0f} msg/s, errors {dict(self.errors)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "server": self.server,
            "client": self.client,
            "messages": self.messages,
            "accepted": self.accepted,
            "seconds": round(self.seconds, 3),
            "messages_per_second": round(self.rate, 1),
            "smtp_errors": dict(self.errors),
            **self.extra,
        }


def percentiles(values: Sequence[float]) -> dict[str, float] | None:
    """p50/p95/p99/max of seconds, in milliseconds (nearest rank)."""
    if not values:
        return None
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"p50": rank(0.5), "p95": rank(0.95), "p99": rank(0.99), "max": rank(1.0)}


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
        return conn.execute(sql).fetchall()


BACKLOG = """SELECT (SELECT count(*) FROM messages WHERE state = 'spooled')
                  + (SELECT count(*) FROM deliveries WHERE state = 'pending')"""
EVENTS = "SELECT message_id, outcome, received_at, filtered_at, delivered_at FROM events"


async def _drain(db: Path, timeout: float) -> float | None:
    """Seconds until nothing is left to filter or deliver; None if ``timeout`` passed first."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if (await asyncio.to_thread(_query, db, BACKLOG))[0][0] == 0:
            return round(time.perf_counter() - started, 2)
        await asyncio.sleep(0.2)
    return None


async def gateway_stats(
    row: Row, db: Path, sink: TraceSink, report: SendReport | None, drain: float
) -> None:
    """Wait for the gateway to finish, then add outcomes and latencies to ``row``."""
    drained = await _drain(db, drain)
    row.extra["drain_seconds_after_sending"] = drained
    # Accepting can outrun filtering; this rate counts until the backlog is gone.
    if drained is not None:
        row.extra["sustained_per_second"] = round(row.accepted / (row.seconds + drained), 1)
    events = await asyncio.to_thread(_query, db, EVENTS)
    outcomes = Counter(e[1] for e in events)
    row.extra["outcomes"] = dict(outcomes)
    row.extra["sink"] = {"received": sink.received, "repeats": sink.repeats}
    if events:
        span = max(e[3] for e in events) - min(e[2] for e in events)
        row.extra["filtered_per_second"] = round(len(events) / span, 1) if span > 0 else None
    row.extra["gateway_stages_ms"] = {
        "received_to_filtered": percentiles([e[3] - e[2] for e in events]),
        "filtered_to_delivered": percentiles([e[4] - e[3] for e in events if e[4] is not None]),
    }
    if report is None:  # smtp-source: no traces, only counts
        row.extra["held"] = sum(outcomes[h] for h in HELD)
        return
    held_ids = {e[0] for e in events if e[1] in HELD}
    end_to_end, counts = [], Counter[str]()
    for sent in report.results:
        if not sent.accepted:
            continue
        arrived = sink.arrivals.get(sent.trace)
        if arrived is not None:
            end_to_end.append(arrived - sent.started)
            counts["delivered"] += 1
        else:
            counts["held" if sent.text.rsplit(" ", 1)[-1] in held_ids else "missing"] += 1
    row.extra.update({k: counts[k] for k in ("delivered", "held", "missing")})
    row.extra["end_to_end_ms"] = percentiles(end_to_end)
    row.extra["reply_ms"] = percentiles([r.replied - r.started for r in report.results])


def targets(rows: Sequence[Row]) -> dict[str, Any]:
    """The issue's targets, each compared with the same client on both sides."""
    rate = {(r.server, r.client): r.rate for r in rows}
    ceiling, scaling = {}, {}
    for client in ("smtp-source", "python"):
        base, one, two = (rate.get((s, client)) for s in ("aiosmtpd", "gateway x1", "gateway x2"))
        if base and one:
            ratio = one / base
            ceiling[client] = {"ratio": round(ratio, 2), "met": ratio >= TARGET_RATIO}
        if one and two:
            ratio = two / one
            scaling[client] = {"ratio": round(ratio, 2), "scales": ratio >= SCALES}
    return {
        "gateway_1w_vs_aiosmtpd_ceiling": {"target": TARGET_RATIO, **ceiling},
        "workers_2_vs_1": {"threshold": SCALES, **scaling},
    }


def print_table(result: dict[str, Any]) -> None:
    title = (
        f"end to end, {result['messages_per_row']} messages per row, "
        f"{result['concurrency']} sessions, {result['host']['cores']} cores"
    )
    table = Table(title=title)
    for column in (
        "server",
        "client",
        "msg/s",
        "sustained",
        "e2e p50/p95/p99/max ms",
        "deliv/held/miss",
    ):
        table.add_column(column, justify="left" if column in ("server", "client") else "right")
    table.add_column("SMTP errors")
    for row in result["rows"]:
        e2e = row.get("end_to_end_ms")
        fate = [row.get(k) for k in ("delivered", "held", "missing")]
        table.add_row(
            row["server"],
            row["client"],
            f"{row['messages_per_second']:.0f}",
            str(row.get("sustained_per_second", "")),
            "/".join(f"{e2e[k]:.0f}" for k in ("p50", "p95", "p99", "max")) if e2e else "",
            "/".join(str(v) for v in fate) if fate[0] is not None else str(row.get("held", "")),
            ", ".join(f"{k}: {v}" for k, v in row["smtp_errors"].items()),
        )
    console.print(table)
    console.print_json(data=result["targets"])
