"""The customer-managed sender lists as the pipeline sees them, cached between messages.

Reading every entry for every message would cost a query per message; the
snapshot is reloaded when this process changed a list, or when the store's
list version moved (another worker changed one), checked at most every few
seconds. So an API change takes effect on the next message here, and within
seconds in other workers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from filters.lists import DomainLists
from quarantine import senderlists
from store.store import Store

CHECK_SECONDS = 5.0


class DynamicLists:
    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self._snapshot: Mapping[str, DomainLists] = {}
        self._version: tuple[int, int] | None = None
        self._checked = float("-inf")
        self._dirty = True

    def invalidate(self) -> None:
        self._dirty = True

    async def snapshot(self) -> Mapping[str, DomainLists]:
        now = self.clock()
        if self._dirty or now - self._checked >= CHECK_SECONDS:
            self._checked, self._dirty = now, False
            version = await asyncio.to_thread(self.store.read, senderlists.version)
            if version != self._version:
                self._snapshot = await asyncio.to_thread(self.store.read, senderlists.snapshot)
                self._version = version
        return self._snapshot
