"""Bookkeeping writes that wait out a store fault (disk full, read-only file) instead of failing.

After the 250 the message is on disk; what follows (verdicts, delivery
state) only records progress. If such a write fails because the store is
unwritable for a while, giving up would leave a row that nothing moves
until a restart, and a restart would redo work already done (deliver a
second time). So the write is retried in-process, with capped backoff,
until the store takes it; work waits, nothing is lost or repeated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import OperationalError

from store.writer import StoreWriter

log = logging.getLogger("mailmoat.store")

P = ParamSpec("P")
T = TypeVar("T")

FIRST_DELAY = 0.1
MAX_DELAY = 5.0
LOG_EVERY = 30.0

TRANSIENT = (OperationalError, OSError)
"""What a full disk, a read-only or locked file raise: worth waiting for."""


async def until_stored(
    writer: StoreWriter, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``writer.call(fn, ...)``, repeated while the store raises a transient fault."""
    return await until_written(lambda: writer.call(fn, *args, **kwargs))


async def until_written(write: Callable[[], Awaitable[T]]) -> T:
    """``await write()`` (a group commit: ``writer.record``, ``writer.finish``), repeated while
    the store raises a transient fault."""
    delay = FIRST_DELAY
    logged = 0.0
    while True:
        try:
            return await write()
        except TRANSIENT as exc:
            now = time.monotonic()
            if now - logged >= LOG_EVERY:  # one line per half minute, not one per try
                log.error("store write failed, retrying until it succeeds: %s", exc)
                logged = now
            await asyncio.sleep(delay)
            delay = min(MAX_DELAY, delay * 2)
