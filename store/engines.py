"""Engines for a store location: an embedded SQLite file, or a PostgreSQL server by URL.

Each location gets two engines. ``durable`` commits accepted mail and waits
until it is on disk (SQLite ``synchronous=FULL``; PostgreSQL's default
``synchronous_commit=on``), so the 250 is only said for mail that survives
a crash. ``engine`` commits bookkeeping without waiting for the flush
(SQLite ``NORMAL``; PostgreSQL ``synchronous_commit=off``): a crash may
lose the last few bookkeeping commits, which at worst filters or delivers a
message once more, never loses one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.sql.dml import Insert

POSTGRES_POOL = 16  # connections per engine: writer threads, readers and the HTTP API
MIGRATION_LOCK = 0x6D61696C  # pg_advisory_xact_lock key: nodes starting together migrate once


def _pragmas(synchronous: str) -> Callable[[Any, Any], None]:
    def apply(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return apply


@dataclass(frozen=True)
class Engines:
    """The bookkeeping engine, the durable engine, and what the backend allows."""

    engine: Engine
    durable: Engine
    concurrent_writers: bool

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()
        self.durable.dispose()


def is_url(location: Path | str) -> bool:
    """True for a SQLAlchemy URL (``postgresql+psycopg://...``), false for a file path."""
    return isinstance(location, str) and "://" in location


def open_engines(location: Path | str) -> Engines:
    """Engines for a SQLite file path or a database URL; raises ValueError on other URLs."""
    if not is_url(location):
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{path}")
        event.listen(engine, "connect", _pragmas("NORMAL"))
        durable = create_engine(f"sqlite:///{path}")
        event.listen(durable, "connect", _pragmas("FULL"))
        return Engines(engine, durable, concurrent_writers=False)
    url = make_url(str(location))
    if url.get_backend_name() == "sqlite":
        return open_engines(Path(url.database or ""))
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"store url {url.render_as_string()}: only sqlite and postgresql")
    if url.drivername == "postgresql":  # SQLAlchemy's default driver would be psycopg2
        url = url.set(drivername="postgresql+psycopg")
    options: dict[str, Any] = {"pool_size": POSTGRES_POOL, "max_overflow": POSTGRES_POOL}
    engine = create_engine(url, connect_args={"options": "-c synchronous_commit=off"}, **options)
    durable = create_engine(url, **options)
    return Engines(engine, durable, concurrent_writers=True)


def insert_new(conn: Connection, table: Table) -> Insert:
    """An INSERT that skips rows whose key is already there, in the connection's dialect.

    Both engines spell it ``ON CONFLICT DO NOTHING``, but SQLAlchemy builds it
    from the dialect's own ``insert``; a plain ``INSERT OR IGNORE`` is SQLite only.
    """
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def lock_for_migration(conn: Connection) -> None:
    """Serialise migrations of nodes sharing one PostgreSQL (SQLite's write lock does it)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
