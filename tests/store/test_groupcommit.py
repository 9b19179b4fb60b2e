"""Group commit: callers share transactions, and every caller learns its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TypeVar

import pytest

from store.groupcommit import GroupCommit

T = TypeVar("T")


class Writer:
    """A writer thread stand-in: runs each store call when the test lets it."""

    def __init__(self) -> None:
        self.calls = 0
        self.broken_from: int | None = None  # the writer itself fails from this call on
        self.gate = asyncio.Event()
        self.gate.set()

    async def run(self, op: str, fn: Callable[[], T], /) -> T:
        self.calls += 1
        await self.gate.wait()
        if self.broken_from is not None and self.calls >= self.broken_from:
            raise RuntimeError("writer thread gone")
        return fn()


def _commit(batch: Sequence[int]) -> list[int]:
    """Doubles each item; 13 fails the whole transaction it is in."""
    if 13 in batch:
        raise ValueError("13 refused")
    return [item * 2 for item in batch]


async def test_items_queued_while_a_batch_commits_share_the_next_one() -> None:
    writer = Writer()
    group: GroupCommit[int, int] = GroupCommit("test", _commit, writer.run)
    writer.gate.clear()
    first = asyncio.create_task(group.submit(1))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(group.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    writer.gate.set()
    assert [await t for t in (first, *rest)] == [2, 4, 6, 8]
    assert group.batches == 2
    await group.close()


async def test_a_failed_batch_is_written_item_by_item_so_only_its_culprit_fails() -> None:
    writer = Writer()
    group: GroupCommit[int, int] = GroupCommit("test", _commit, writer.run)
    writer.gate.clear()
    tasks = [asyncio.create_task(group.submit(n)) for n in (5, 13, 7)]
    await asyncio.sleep(0)
    writer.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == 10 and results[2] == 14
    assert isinstance(results[1], ValueError)
    await group.close()


async def test_when_the_writer_fails_too_every_caller_gets_the_error_none_hangs() -> None:
    writer = Writer()
    writer.broken_from = 2  # the batch fails on 13, then the writer itself for the retry
    group: GroupCommit[int, int] = GroupCommit("test", _commit, writer.run)
    writer.gate.clear()
    tasks = [asyncio.create_task(group.submit(n)) for n in (5, 13)]
    await asyncio.sleep(0)
    writer.gate.set()
    async with asyncio.timeout(5):
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    await group.close()


async def test_close_waits_for_the_batch_in_flight() -> None:
    writer = Writer()
    group: GroupCommit[int, int] = GroupCommit("test", _commit, writer.run)
    writer.gate.clear()
    item = asyncio.create_task(group.submit(21))
    await asyncio.sleep(0.05)  # popped from the queue, its transaction not done
    closing = asyncio.create_task(group.close())
    await asyncio.sleep(0.05)
    assert not closing.done()
    writer.gate.set()
    async with asyncio.timeout(5):
        await closing
    assert await item == 42
    with pytest.raises(RuntimeError):
        await group.submit(1)
