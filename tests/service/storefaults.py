"""Store write faults on demand: a running gateway's SQLite connections refuse every write.

SQLite's ``query_only`` makes each write fail with SQLITE_READONLY, the error
an immutable or read-only store file gives, through the same driver and
SQLAlchemy paths as a full disk (``OperationalError``), so the gateway meets
the fault exactly where it would in production.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from store.store import Store


class WriteFault:
    """``fail(True)`` makes ``store`` refuse writes on every connection; ``fail(False)`` heals."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.on = False
        for engine in (store.engine, store.durable):
            event.listen(engine, "connect", self._apply)

    def _apply(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA query_only={1 if self.on else 0}")

    def fail(self, on: bool) -> None:
        self.on = on
        for engine in (self.store.engine, self.store.durable):
            engine.dispose()  # pooled connections reconnect with the new setting
