"""Start-up recovery of accepted but unfiltered mail, streamed instead of loaded at once.

After a crash the spool may hold gigabytes of accepted mail. Loading every
message before listening took seconds and as much memory as the spool; here
only the queue ids are read up front, and each message is read from the
store when the filter backlog has room for it, so start-up is quick and
memory stays within the backlog limits while the spool drains.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import select

from store.records import MessageState, Spooled
from store.schema import messages
from store.store import Store, spooled_from_row
from store.writer import StoreWriter

log = logging.getLogger("mailmoat.gateway")

POLL_SECONDS = 0.05


def load(store: Store, queue_id: str) -> Spooled | None:
    """One spooled message with its bytes, or None if it was handled meanwhile."""
    query = select(messages).where(messages.c.id == queue_id)
    with store.engine.connect() as conn:
        r = conn.execute(query).one_or_none()
    if r is None or r.state != MessageState.SPOOLED:
        return None
    return spooled_from_row(r)


async def stream(
    writer: StoreWriter,
    backlog: list[tuple[str, int]],
    has_room: Callable[[int], bool],
    submit: Callable[[Spooled], None],
) -> None:
    """Hand ``backlog`` to the filter one message at a time, as the backlog limits allow."""
    for queue_id, size in backlog:
        while not has_room(size):
            await asyncio.sleep(POLL_SECONDS)
        message = await writer.call(load, writer.store, queue_id)
        if message is not None:
            submit(message)
    if backlog:
        log.info("recovered backlog handed to the filter", extra={"unfiltered": len(backlog)})
