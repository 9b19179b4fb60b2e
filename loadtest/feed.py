"""Feed a replay into the SLA monitor: each accepted message's label becomes ground truth.

The gateway names its queue id in the 250 reply ("queued as ID"); that id
is the message id of its events, so a labelled replay yields exact false
positive and false negative figures in the monthly report.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.dialects import postgresql, sqlite

from loadtest.replay import ReplayResult
from store.sla_tables import labels
from store.store import Store

_QUEUED = re.compile(r"queued as ([0-9A-Z]+)")


def labelled_queue_ids(result: ReplayResult) -> list[tuple[str, str]]:
    """(queue id, ham|spam) for every accepted, labelled message of the run."""
    found: list[tuple[str, str]] = []
    for record in result.records:
        label = result.messages[record.message].label
        match = _QUEUED.search(record.text)
        if record.accepted and label is not None and match:
            found.append((match.group(1), label))
    return found


def feed(store_path: Path | str, result: ReplayResult) -> int:
    """Record the labels in the gateway's store; returns how many."""
    pairs = labelled_queue_ids(result)
    if not pairs:
        return 0
    store = Store(store_path)
    try:
        rows = [{"message_id": m, "label": label} for m, label in pairs]
        dialect = postgresql if store.engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(labels)
        upsert = statement.on_conflict_do_update(
            index_elements=["message_id"], set_={"label": statement.excluded.label}
        )
        store.write(lambda conn: conn.execute(upsert, rows))
    finally:
        store.close()
    return len(pairs)
