"""One store, one gateway: the second holder gets a clear error naming the first one's pid."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.lock import StoreLocked, lock_path, store_lock


def test_a_second_lock_on_the_same_store_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "data" / "mailmoat.db"
    with store_lock(store) as path:
        assert path == lock_path(store)
        assert path.read_text().strip() == str(os.getpid())
        refused = pytest.raises(StoreLocked, match=rf"another gateway \(pid {os.getpid()}\)")
        with refused, store_lock(store):
            pass
        with store_lock(tmp_path / "other.db"):  # another store is another gateway's
            pass
    with store_lock(store):  # released at exit: the next start gets it
        pass
