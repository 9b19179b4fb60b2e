"""What ``/readyz`` checks: the gateway can take mail, store it, filter it, right now.

Each check does the real thing rather than asking a flag: the store check
commits a row to the messages table through the writer thread with a full
fsync (what a 250 needs), so a full disk, a read-only file or a stuck writer
turn it red; the filter check asks the supervised pool whether its processes
are alive.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete

from service.filterpool import FilterPool
from service.http import ReadinessCheck
from store.schema import messages
from store.store import Store
from store.writer import StoreWriter

PROBE_ID = "~readyz-probe"
"""A queue id no real message can have (ids are upper-case hex)."""


def probe_write(store: Store) -> bool:
    """Insert and delete one row in one durable transaction: a real write, nothing left behind."""
    with store.durable.begin() as conn:
        conn.execute(delete(messages).where(messages.c.id == PROBE_ID))
        conn.execute(
            messages.insert().values(
                id=PROBE_ID, received_at=0.0, mail_from="", rcpt_tos="[]", size=0, raw=b"",
                state="probe", worker=-1,
            )
        )  # fmt: skip
        conn.execute(delete(messages).where(messages.c.id == PROBE_ID))
    return True


def readiness_checks(
    smtp_serving: Callable[[], bool], writer: StoreWriter, pool: FilterPool
) -> dict[str, ReadinessCheck]:
    async def store() -> bool:
        return writer.running() and await writer.call(probe_write, writer.store)

    return {"smtp": smtp_serving, "store": store, "filter": pool.alive}
