"""One store, one running gateway: an exclusive lock file beside the store.

A second ``mailmoat serve`` (or ``demo``) on the same store would run
start-up recovery and requeue every pending delivery of the running one
before failing to bind its ports. It now stops first, with the holder's pid.
The lock is ``flock(2)`` on ``<store>.lock``: the kernel drops it when the
process dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class StoreLocked(RuntimeError):
    """Another process runs a gateway on this store."""


def lock_path(store: Path, node: str | None = None) -> Path:
    """``<store>.lock``; with ``node`` (a PostgreSQL store shared by several nodes), one lock
    per node name: two nodes may share a database, two runs of one node name may not."""
    suffix = f".{node.replace('/', '_')}.lock" if node is not None else ".lock"
    return store.with_name(store.name + suffix)


@contextmanager
def store_lock(store: Path, node: str | None = None) -> Iterator[Path]:
    """Hold the store's lock for the ``with`` block; raises ``StoreLocked`` if it is taken."""
    path = lock_path(store, node)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise StoreLocked(
                f"another gateway (pid {holder}) is running on {store}; stop it first, "
                f"or give this one its own store (store.path)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
