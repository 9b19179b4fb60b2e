"""The store's writer threads, and group commit for the SMTP side.

Every store call blocks, so all of them run on dedicated threads: the event
loop never waits on the database. SQLite allows one writer at a time, so
there it is one thread and writes never contend; PostgreSQL takes writes
side by side, so there a few threads share the work. ``spool`` batches:
while one commit (and its fsync) is in flight, newly accepted messages queue
up and are committed together next, so under load many messages share one
fsync while a lone message is not delayed by any timer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.engine import Connection

from store.records import Spooled
from store.store import Store

P = ParamSpec("P")
T = TypeVar("T")

Write = Callable[[Callable[[Connection], Any]], Awaitable[Any]]
"""What a component that only writes is handed: ``StoreWriter.write``, awaited."""

Timed = Callable[[str, float], None]
"""Told how long each store call took on its thread: ``(op, seconds)``; op is spool or write."""

MAX_BATCH = 256
POSTGRES_THREADS = 4


class StoreWriter:
    """Runs store calls on the writer threads; ``spool`` group-commits accepted messages."""

    def __init__(self, store: Store) -> None:
        self.store = store
        threads = POSTGRES_THREADS if store.concurrent_writers else 1
        self._thread = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mailmoat-store")
        self._pending: list[tuple[Spooled, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
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

    def start(self) -> None:
        self._task = asyncio.create_task(self._commit_loop(), name="mailmoat-spool")

    def running(self) -> bool:
        """True while the commit loop runs (False before start, after close or a crash)."""
        return self._task is not None and not self._task.done()

    async def spool(self, message: Spooled) -> None:
        """Return once ``message`` is committed to disk; raise if the commit failed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((message, future))
        self._wakeup.set()
        await future

    async def _commit_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    await self._run("spool", partial(self.store.spool, [m for m, _ in batch]))
                except Exception as exc:  # every waiter must learn the outcome, not hang
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.batches += 1
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def close(self) -> None:
        """Commit what is queued, stop the loop and the thread."""
        while self._pending:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._thread.shutdown(wait=True)
