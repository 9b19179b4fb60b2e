"""The store's writer threads, and group commit of the writes every message makes.

Every store call blocks, so all of them run on dedicated threads: the event
loop never waits on the database. SQLite allows one writer at a time, so
there it is one thread and writes never contend; PostgreSQL takes writes
side by side, so there a few threads share the work. The three writes each
message makes go through group commits (``store/groupcommit.py``): ``spool``
(accepted messages, before their 250: many share one fsync), ``record``
(filtering outcomes) and ``finish`` (ended deliveries). One transaction per
message and per delivery made the single SQLite writer thread the gateway's
bottleneck; batched, a few transactions carry hundreds of messages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.engine import Connection

from store.groupcommit import GroupCommit
from store.records import Delivery, Filtered, Finished, Recorded, Spooled
from store.store import Store

P = ParamSpec("P")
T = TypeVar("T")

Write = Callable[[Callable[[Connection], Any]], Awaitable[Any]]
"""What a component that only writes is handed: ``StoreWriter.write``, awaited."""

Timed = Callable[[str, float], None]
"""Told how long each store call took on its thread: ``(op, seconds)``; op is spool, outcome,
delivery (the group commits) or write (every other call)."""

POSTGRES_THREADS = 4


class StoreWriter:
    """Runs store calls on the writer threads; ``spool``, ``record`` and ``finish`` group-commit."""

    def __init__(self, store: Store) -> None:
        self.store = store
        threads = POSTGRES_THREADS if store.concurrent_writers else 1
        self._thread = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mailmoat-store")
        self._spool = GroupCommit("spool", self._spool_batch, self._run)
        self._record = GroupCommit("outcome", store.record_outcomes, self._run)
        self._finish = GroupCommit("delivery", store.finish, self._run)
        self._groups = (self._spool, self._record, self._finish)
        self.timed: Timed | None = None
        """Set by the gateway to its commit-latency histogram; tests leave it unset."""

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run("write", lambda: fn(*args, **kwargs))

    async def _run(self, op: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` on a writer thread, timing it there (the transaction, not the wait for a
        thread: a slow disk shows as slow commits, a busy gateway as queued work)."""

        def timed() -> T:
            start = time.perf_counter()
            try:
                return fn()
            finally:
                if self.timed is not None:
                    self.timed(op, time.perf_counter() - start)

        return await asyncio.get_running_loop().run_in_executor(self._thread, timed)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction on a writer thread: every write goes this way."""
        return await self.call(self.store.write, fn)

    @property
    def batches(self) -> int:
        """Group-committed transactions so far (tests check that items shared one)."""
        return sum(group.batches for group in self._groups)

    def start(self) -> None:
        for group in self._groups:
            group.start()

    def running(self) -> bool:
        """True while the group commits run (False before start, after close or a crash)."""
        return all(group.running() for group in self._groups)

    async def spool(self, message: Spooled) -> None:
        """Return once ``message`` is committed to disk; raise if the commit failed."""
        await self._spool.submit(message)

    def _spool_batch(self, batch: Sequence[Spooled]) -> list[None]:
        self.store.spool(batch)
        return [None] * len(batch)

    async def record(self, filtered: Filtered) -> Recorded:
        """``Store.record_filtered`` in a group commit; raises what recording it alone raises."""
        return await self._record.submit(filtered)

    async def finish(self, finished: Finished) -> list[Delivery]:
        """``Store.finish_delivery`` in a group commit: the follow-ups it queued."""
        return await self._finish.submit(finished)

    async def close(self) -> None:
        """Commit what is queued, stop the group commits and the threads."""
        for group in self._groups:
            await group.close()
        self._thread.shutdown(wait=True)
