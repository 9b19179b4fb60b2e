"""What customers manage over REST, as the pipeline sees it, cached between messages.

Sender lists (``quarantine.senderlists``) and content rules with stage
actions (``quarantine.content_settings``) come together per domain as one
``DomainLists``.

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
from dataclasses import replace

from sqlalchemy.engine import Connection

from filters.lists import DomainLists
from quarantine import content_settings, senderlists
from store.store import Store

Version = tuple[tuple[int, int], tuple[int, int]]


def _version(conn: Connection) -> Version:
    return senderlists.version(conn), content_settings.version(conn)


def _snapshot(conn: Connection) -> dict[str, DomainLists]:
    """Sender lists with each domain's content rules and stage actions added."""
    lists = senderlists.snapshot(conn)
    for domain, settings in content_settings.snapshot(conn).items():
        lists[domain] = replace(
            lists.get(domain, DomainLists()),
            content_rules=settings.content_rules,
            actions=settings.actions,
        )
    return lists


CHECK_SECONDS = 5.0


class DynamicLists:
    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self._snapshot: Mapping[str, DomainLists] = {}
        self._version: Version | None = None
        self._checked = float("-inf")
        self._dirty = True

    def invalidate(self) -> None:
        self._dirty = True

    async def snapshot(self) -> Mapping[str, DomainLists]:
        now = self.clock()
        if self._dirty or now - self._checked >= CHECK_SECONDS:
            self._checked, self._dirty = now, False
            version = await asyncio.to_thread(self.store.read, _version)
            if version != self._version:
                self._snapshot = await asyncio.to_thread(self.store.read, _snapshot)
                self._version = version
        return self._snapshot
