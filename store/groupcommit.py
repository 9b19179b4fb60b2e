"""Group commit: calls that arrive while a transaction is in flight share the next one.

While one batch commits on a writer thread, new items queue; when it is
done they all go in the next transaction together. Under load many callers
share one transaction (and, for accepted mail, one fsync); a lone item is
not delayed by any timer. Each caller awaits its own result.

A batch that fails is not the failure of every caller in it: the items are
then written one per transaction, so each caller learns its own outcome (a
lost lease, a full quarantine, a fault that concerns its row alone) and the
others are stored as if they had come alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

I = TypeVar("I")  # noqa: E741 - the item type, beside R
R = TypeVar("R")
T = TypeVar("T")


class Run(Protocol):
    """Runs a store call on a writer thread, timed under an op name (``StoreWriter._run``)."""

    def __call__(self, op: str, fn: Callable[[], T], /) -> Awaitable[T]: ...


MAX_BATCH = 256

log = logging.getLogger("mailmoat.store")


class GroupCommit(Generic[I, R]):
    """Items of one kind, written ``commit(batch)`` many at a time; results in batch order."""

    def __init__(self, op: str, commit: Callable[[Sequence[I]], list[R]], run: Run) -> None:
        self.op = op
        self._commit = commit
        self._run = run
        self._pending: list[tuple[I, asyncio.Future[R]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        """Transactions that committed a batch (tests check items shared one)."""
        self._writing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"mailmoat-{self.op}")

    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def submit(self, item: I) -> R:
        """Return ``item``'s result once its transaction committed; raise what it raised.

        The first call starts the commit loop if ``start`` was not called: a
        component that writes (the delivery queue in a test) needs no more than
        the writer. After ``close``, raises RuntimeError: nothing would commit it.
        """
        if self._task is None:
            self.start()
        elif self._task.done():
            raise RuntimeError(f"the {self.op} group commit is closed")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wakeup.set()
        return await future

    async def _loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                self._writing = True
                try:
                    await self._write(batch)
                finally:
                    self._writing = False

    async def _write(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = await self._run(self.op, lambda: self._commit(items))
        except Exception as exc:  # every waiter must learn its own outcome, not hang
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            log.debug(  # a store fault fails every batch: until_written logs it, less often
                "%s batch of %d failed (%r): writing them one by one", self.op, len(batch), exc
            )
            try:
                alone = await self._run(self.op, lambda: [self._alone(item) for item in items])
            except Exception as again:  # the writer itself failed: no caller may hang on it
                alone = [again] * len(batch)
            for (_, future), outcome in zip(batch, alone, strict=True):
                _settle(future, outcome)
            return
        self.batches += 1
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)

    def _alone(self, item: I) -> R | Exception:
        try:
            return self._commit([item])[0]
        except Exception as exc:  # handed to this item's caller
            return exc

    async def close(self) -> None:
        """Write what is queued and in flight, then stop: no caller is left waiting."""
        while (self._pending or self._writing) and self.running():
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def _settle(future: asyncio.Future[T], outcome: T | Exception) -> None:
    if future.done():  # the caller gave up (cancelled)
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
