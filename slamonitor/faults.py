"""Customer-side faults: proposed by the receiving-server probe, confirmed by an operator.

SPEC 4 does not apply the latency level while the customer's own set-up is
at fault: their server refuses or times out, their DNS does not resolve, or
mail loops back to us. The queue watch opens a *proposed* ``customer_fault``
window when the probe fails, stretches it while it keeps failing and closes
it when the server answers again; it exempts nothing until an operator
confirms it (an operator may also reject it, say when our own network was
the problem).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from slamonitor.exclusions import Kind, State
from slamonitor.probe import ProbeResult
from store.sla_tables import windows

PROPOSER = "receiving-server-probe"


class WindowConflict(Exception):
    """The window is not in a state that allows the change."""


@dataclass(frozen=True, slots=True)
class WindowRow:
    id: int
    kind: str
    domain: str | None
    start_at: float
    end_at: float
    reason: str
    created_by: str
    created_at: float
    state: str
    decided_by: str | None
    decided_at: float | None

    @classmethod
    def of(cls, row: Any) -> WindowRow:
        m = row._mapping
        return cls(**{k: m[k] for k in cls.__dataclass_fields__})


def is_customer_side(result: ProbeResult) -> bool:
    """A failed probe of the customer's server; no cause means we had no server to probe."""
    return not result.ok and result.cause is not None


def propose(conn: Connection, domain: str, at: float, result: ProbeResult) -> int:
    """A new proposed window for ``domain`` from ``at``; ``stretch`` moves its end later."""
    key = conn.execute(
        windows.insert().values(
            kind=Kind.CUSTOMER_FAULT, domain=domain, start_at=at, end_at=at,
            reason=f"receiving server failed the probe ({result.cause}): {result.detail}",
            created_by=PROPOSER, created_at=at, state=State.PROPOSED,
        )
    ).inserted_primary_key  # fmt: skip
    assert key is not None
    return int(key[0])


def still_open(conn: Connection, domain: str, since: float) -> int | None:
    """A probe-proposed window of ``domain`` that reached ``since`` or later: after a restart
    the watch goes on with it rather than opening a second one for the same fault."""
    found = conn.execute(
        select(windows.c.id)
        .where(windows.c.created_by == PROPOSER, windows.c.domain == domain)
        .where(windows.c.kind == Kind.CUSTOMER_FAULT, windows.c.state != State.REJECTED)
        .where(windows.c.end_at >= since)
        .order_by(windows.c.end_at.desc())
        .limit(1)
    ).scalar()
    return None if found is None else int(found)


def stretch(conn: Connection, window_id: int, at: float) -> None:
    """The fault still holds (or just ended) at ``at``: the window reaches that far."""
    conn.execute(
        update(windows)
        .where(windows.c.id == window_id, windows.c.end_at < at)
        .where(windows.c.state != State.REJECTED)
        .values(end_at=at)
    )


def get(conn: Connection, window_id: int) -> WindowRow | None:
    row = conn.execute(select(windows).where(windows.c.id == window_id)).first()
    return None if row is None else WindowRow.of(row)


def decide(
    conn: Connection, window_id: int, confirmed: bool, by: str, now: float, reason: str | None
) -> WindowRow:
    """Confirm or reject a proposed window; deciding twice is a conflict."""
    values: dict[str, object] = {
        "state": State.CONFIRMED if confirmed else State.REJECTED,
        "decided_by": by,
        "decided_at": now,
    }
    current = get(conn, window_id)
    assert current is not None, "callers check the window exists"
    if reason:
        values["reason"] = f"{current.reason}; {by}: {reason}"
    done = conn.execute(
        update(windows)
        .where(windows.c.id == window_id, windows.c.state == State.PROPOSED)
        .values(**values)
    )
    if done.rowcount != 1:
        raise WindowConflict(f"window {window_id} is {current.state}, not proposed")
    found = get(conn, window_id)
    assert found is not None
    return found


def listing(
    conn: Connection, domains: frozenset[str] | None, state: State | None
) -> list[WindowRow]:
    """Windows oldest first; ``domains`` also shows the windows for every domain."""
    query = select(windows).order_by(windows.c.start_at, windows.c.id)
    if domains is not None:
        query = query.where(windows.c.domain.is_(None) | windows.c.domain.in_(sorted(domains)))
    if state is not None:
        query = query.where(windows.c.state == state)
    return [WindowRow.of(r) for r in conn.execute(query)]
