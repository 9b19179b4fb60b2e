"""The simulated month written to a gateway store, in bulk, through the gateway's own schema.

Events go in through the DB-API's ``executemany`` fed by a generator in
receipt order (both indexes then grow at their end), so ten million rows
never exist as Python objects at once. Every reader of the store (``mailmoat
sla report``, the ``/sla`` API) then works on the file unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, Table

from filters.verdict import Action
from simulator.customers import Claims, Tickets
from simulator.engine import Run
from simulator.mix import OUTCOMES
from simulator.scenario import ConfigFault, Dos, Maintenance, Suspension
from simulator.watch import Watch
from slamonitor import faults
from slamonitor.exclusions import Kind, State
from store.schema import events
from store.sla_tables import (
    alerts,
    availability,
    claims,
    queue_samples,
    services,
    tickets,
    windows,
)
from store.store import Store

CHUNK = 100_000
EVENT_COLUMNS = (
    "message_id", "domain", "received_at", "filtered_at", "delivered_at", "action", "category",
    "outcome", "score", "symbols", "hits", "size", "recipients", "detail",
)  # fmt: skip
FULL = "quarantine unavailable: tagged and delivered"
ACTIONS = [a.label for a in sorted(Action)]
BY = "simulator"
DAY = 86400.0


def message_id(i: int) -> str:
    return f"{i:032x}"


def _pick(values: list[Any], codes: NDArray[Any]) -> list[Any]:
    """``values[c]`` for each code, gathered by numpy (no Python per row)."""
    table = np.empty(len(values), dtype=object)
    table[:] = values
    picked: list[Any] = table[codes].tolist()
    return picked


def _rows(run: Run, lo: int, hi: int) -> Iterator[tuple[Any, ...]]:
    """Rows ``lo:hi`` as one ``zip`` of column lists: the tuples are built in C."""
    mix, sent = run.mix, run.arrivals
    message = sent.message[lo:hi]
    delivered = run.delivered[lo:hi].astype(object)
    delivered[np.isnan(run.delivered[lo:hi])] = None
    return zip(
        [message_id(i) for i in range(lo, hi)],
        _pick(run.domains, sent.domain[lo:hi]),
        run.received[lo:hi].tolist(),
        run.filtered[lo:hi].tolist(),
        delivered.tolist(),
        _pick(ACTIONS, run.action[lo:hi]),
        _pick(mix.category, message),
        _pick(list(OUTCOMES), run.outcome[lo:hi]),
        _pick(mix.score, message),
        _pick(mix.symbols, message),
        _pick(mix.hits, message),
        _pick(mix.size, message),
        sent.recipients[lo:hi].tolist(),
        _pick([None, FULL], run.quarantine_full[lo:hi].astype(np.int8)),
        strict=True,
    )


def _bulk(
    raw: sqlite3.Connection,
    table: Table,
    columns: tuple[str, ...],
    chunks: Iterable[Iterable[tuple[Any, ...]]],
    progress: Callable[[int], None] = lambda _: None,
) -> None:
    """Insert rows through the DB-API; table and column names come from the schema objects."""
    names = ", ".join(table.c[c].name for c in columns)
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' * len(columns))})"
    for chunk in chunks:
        before = raw.total_changes
        raw.executemany(sql, chunk)
        progress(raw.total_changes - before)


def _events(raw: sqlite3.Connection, run: Run, progress: Callable[[int], None]) -> None:
    chunks = (_rows(run, lo, min(lo + CHUNK, len(run))) for lo in range(0, len(run), CHUNK))
    _bulk(raw, events, EVENT_COLUMNS, chunks, progress)


def _samples(raw: sqlite3.Connection, run: Run, seen: Watch) -> None:
    at = seen.at.tolist()
    chunks = (
        zip(at, [name] * len(at), seen.queues[d].tolist(), strict=True)
        for d, name in enumerate(run.domains)
    )
    _bulk(raw, queue_samples, ("at", "domain", "length"), chunks)
    up = zip(
        seen.at.tolist(),
        seen.up.tolist(),
        ("EHLO answered" if u else "connection refused" for u in seen.up.tolist()),
        strict=True,
    )
    _bulk(raw, availability, ("at", "up", "detail"), [up])


def _windows(run: Run) -> list[dict[str, object]]:
    """Declared windows, and each configuration fault as the monitor records one: a
    ``customer_fault`` window the receiving-server probe proposed and an operator confirmed."""
    s = run.scenario
    rows: list[dict[str, object]] = []
    for e in s.events:
        start = s.local(e.start)
        window = {"domain": getattr(e, "domain", None), "start_at": start,
                  "end_at": start + e.seconds, "created_at": start, "state": State.CONFIRMED,
                  "decided_by": None, "decided_at": None}  # fmt: skip
        if isinstance(e, Maintenance | Suspension) or (isinstance(e, Dos) and e.declared):
            rows.append(window | {"kind": e.kind, "reason": f"simulated {e.kind}",
                                  "created_by": BY})  # fmt: skip
        elif isinstance(e, ConfigFault):
            rows.append(
                window | {"kind": Kind.CUSTOMER_FAULT, "created_by": faults.PROPOSER,
                          "reason": "simulated configuration fault: the server answers 4xx",
                          "decided_by": "operator",
                          "decided_at": start + e.seconds}
            )  # fmt: skip
    return rows


def _claims(run: Run, found: Claims) -> list[dict[str, object]]:
    rows = []
    for kind, idx, rejected in (
        ("fp", found.fp, found.fp_rejected),
        ("fn", found.fn, found.fn_rejected),
    ):
        for i, no in zip(idx.tolist(), rejected.tolist(), strict=True):
            received = float(run.received[i])
            rows.append(
                {"kind": kind, "message_id": message_id(i),
                 "domain": run.domains[int(run.arrivals.domain[i])], "received_at": received,
                 "state": "rejected" if no else "confirmed", "source": "customer",
                 "created_by": BY, "created_at": received + DAY,
                 "decided_by": "operator", "decided_at": received + 2 * DAY}
            )  # fmt: skip
    return rows


def _tickets(run: Run, found: Tickets) -> list[dict[str, object]]:
    return [
        {"domain": run.domains[d], "priority": p, "subject": f"simulated {p} ticket",
         "opened_by": BY, "opened_at": o, "first_response_at": r, "responded_by": "helpdesk"}
        for p, d, o, r in zip(
            found.priority, found.domain.tolist(), found.opened.tolist(),
            found.responded.tolist(), strict=True,
        )
    ]  # fmt: skip


def _insert(engine: Engine, table: Table, rows: list[dict[str, object]]) -> None:
    if rows:
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)


def write_store(
    path: Path,
    run: Run,
    found: Claims,
    desk: Tickets,
    seen: Watch,
    progress: Callable[[int], None] = lambda _: None,
) -> None:
    """A fresh store at ``path`` holding the month: events, windows, claims, tickets, samples."""
    path.unlink(missing_ok=True)
    Store(path).close()  # the schema, by the gateway's own migrations
    # One writer and a fresh file: a rollback journal (new pages need none) and no fsync
    # write each page once; WAL would write the whole month twice. WAL again afterwards.
    raw = sqlite3.connect(path)
    try:
        raw.execute("PRAGMA journal_mode=DELETE")
        raw.execute("PRAGMA synchronous=OFF")
        _events(raw, run, progress)
        _samples(raw, run, seen)
        raw.commit()
        raw.execute("PRAGMA journal_mode=WAL")
    finally:
        raw.close()
    store = Store(path)
    try:
        engine = store.engine
        s = run.scenario
        _insert(engine, services, [
            {"domain": d.name, "started_at": s.local(d.started)} for d in s.domains if d.started
        ])  # fmt: skip
        _insert(engine, windows, _windows(run))
        _insert(engine, claims, _claims(run, found))
        _insert(engine, tickets, _tickets(run, desk))
        _insert(engine, alerts, [
            {"at": at, "alert": alert, "domain": domain, "state": state, "detail": detail}
            for at, alert, domain, state, detail in seen.alerts
        ])  # fmt: skip
    finally:
        store.close()
