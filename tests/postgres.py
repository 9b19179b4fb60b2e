"""A PostgreSQL for tests: the server already running when one answers, else a throwaway cluster.

The throwaway cluster comes from Debian's server binaries (``scripts/postgres.sh``
installs them when missing): ``initdb`` into a temporary folder, ``pg_ctl``
on a free loopback port, fsync off, stopped at the end of the session. As
root it runs as the ``postgres`` user, since the server refuses to run as root.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
RUNNING = os.environ.get("MAILMOAT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def answers(url: str) -> bool:
    """True when a server accepts a connection at ``url``."""
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a cluster of our own; yields its URL. Raises RuntimeError when that fails."""
    found = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres.sh")], capture_output=True, text=True, check=False
    )
    if found.returncode != 0:
        raise RuntimeError(f"no PostgreSQL binaries: {found.stderr.strip()}")
    bindir = Path(found.stdout.strip().splitlines()[-1])
    home = Path(tempfile.mkdtemp(prefix="mailmoat-pg-"))
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    data, port = home / "data", _free_port()
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"

    def run(*argv: str) -> None:
        done = subprocess.run(_as_server_user(list(argv)), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stdout}{done.stderr}")

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(home / "log"),
            "-w", "start")  # fmt: skip
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new empty database on ``server``; yields its SQLAlchemy URL, drops it afterwards."""
    name = f"mailmoat_test_{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = server.rsplit("/", 1)[0]
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def reset(url: str) -> None:
    """Empty every table of a migrated database, as the migrations left it.

    Emptying takes milliseconds where a new database and its migrations take
    seconds. ``job_leases`` keeps its rows (the migration seeds them), freed.
    """
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename NOT IN ('alembic_version', 'job_leases')"
            )
        ]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        conn.execute("UPDATE job_leases SET owner = NULL, lease_until = 0")
