"""Alembic on both engines: the migrated schema is the code's schema, and downgrades undo."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from store.schema import metadata
from store.store import MIGRATIONS, Store


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A store location with no schema yet: a new SQLite file or an empty database."""
    if request.param == "sqlite":
        return tmp_path / "db.sqlite"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _differences(store: Store) -> list[object]:
    def compare(conn: object) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})  # type: ignore[arg-type]
        # Column comments document the code's view; migrations need not carry them.
        found = [d[0] if isinstance(d, list) else d for d in compare_metadata(context, metadata)]
        return [d for d in found if d[0] != "modify_comment"]

    return store.read(compare)


def test_migrations_build_the_schema_the_code_uses(empty_location: Path | str) -> None:
    store = Store(empty_location)
    assert _differences(store) == []
    store.close()


def test_the_lease_migration_downgrades_and_upgrades_again(empty_location: Path | str) -> None:
    store = Store(empty_location)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
    assert "job_leases" not in inspect(store.engine).get_table_names()
    store.close()
    again = Store(empty_location)  # opening migrates to the head again
    assert "job_leases" in inspect(again.engine).get_table_names()
    assert _differences(again) == []
    again.close()
