"""Online learning in the gateway: trusted training labels from the store move the live model.

The store's ``training_labels`` table is the one ordered log of what people
told us: a release from quarantine adds a ham label, an operator confirming a
"this is spam" report adds a spam label. ``Learner.catch_up`` applies the
labels after the last one the model file has learned (``learned_through`` in
its metadata) with ``filters.learning.update``, writes the file atomically
(a temporary file in the same folder, fsync, rename) and hands the new model
to the classifier, which swaps it in with ``Policy.with_model`` for the next
message. A restart keeps what was learned because the file holds it.

Several nodes: the log lives in the shared store and the labels are applied
in id order with deterministic rules, so every node's model file reaches the
same weights whether nodes share one file or each keeps its own. The
read-learn-write cycle holds an exclusive ``flock`` on ``<model>.lock``, so
processes sharing one file never both apply a label (the second sees the
first's ``learned_through`` and only reloads).

Poisoning guards, each a reason a label is skipped (logged, never learned):
a ham label counts only from an administrator's release (an API token, not
an end user's digest link or web session); spam labels exist only once an
operator confirmed the report; nothing the virus stage flagged is learned;
and per day (UTC, by label time) at most ``per_sender_per_day`` updates per
sender domain and ``per_domain_per_day`` per customer domain count, so a
flood of releases from one account can only nudge the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from filters.learning import update
from filters.mail import Mail
from filters.model import TokenModel
from filters.symbols import SYMBOLS
from filters.verdict import Stage
from service.config import LearningConfig
from store.principal import END_USER_PREFIXES
from store.quarantine_tables import training_labels
from store.schema import events, messages, quarantine
from store.store import Store

log = logging.getLogger("mailmoat.learning")

BATCH = 200
"""Labels applied per cycle: one file write covers them all."""


@dataclass(frozen=True, slots=True)
class Label:
    """One training label with what the guards need to judge it."""

    id: int
    message_id: str
    is_spam: bool
    source: str
    domain: str
    created_by: str
    created_at: float
    mail_from: str | None
    raw: bytes | None
    virus: bool


def _virus_flagged(conn: Connection, message_id: str) -> bool:
    """Whether any recipient domain's verdict had a hit of the anti-virus stage."""
    held = select(quarantine.c.id).where(
        quarantine.c.message_id == message_id, quarantine.c.category == "virus"
    )
    if conn.execute(held.limit(1)).first() is not None:
        return True
    found = conn.execute(select(events.c.symbols).where(events.c.message_id == message_id))
    return any(
        name in SYMBOLS and SYMBOLS[name].stage is Stage.ANTIVIRUS
        for (symbols,) in found
        for name in json.loads(symbols)
    )


def pending(conn: Connection, after: int, limit: int = BATCH) -> list[Label]:
    """The labels after id ``after``, oldest first, with their messages if still stored."""
    query = (
        select(training_labels, messages.c.mail_from, messages.c.raw)
        .outerjoin(messages, messages.c.id == training_labels.c.message_id)
        .where(training_labels.c.id > after)
        .order_by(training_labels.c.id)
        .limit(limit)
    )
    return [_label(conn, r) for r in conn.execute(query)]


def _label(conn: Connection, row: Any) -> Label:
    return Label(
        id=row.id, message_id=row.message_id, is_spam=row.label == "spam", source=row.source,
        domain=row.domain or "", created_by=row.created_by or "", created_at=row.created_at,
        mail_from=row.mail_from, raw=row.raw, virus=_virus_flagged(conn, row.message_id),
    )  # fmt: skip


@dataclass
class Ledger:
    """Updates counted per sender domain and customer domain on one UTC day (in model metadata)."""

    day: str
    counts: dict[str, int]

    @classmethod
    def of(cls, metadata: dict[str, str]) -> Ledger:
        counts = json.loads(metadata.get("learned_counts", "{}"))
        return cls(metadata.get("learned_day", ""), counts)

    def keys(self, label: Label) -> tuple[str, str]:
        sender = (label.mail_from or "").rpartition("@")[2].lower() or "<>"
        return f"sender:{sender}", f"domain:{label.domain}"

    def refusal(self, label: Label, config: LearningConfig) -> str | None:
        """Why ``label`` must not train the model, or None when it may."""
        if label.is_spam and label.source != "report":
            return "spam labels come only from operator-confirmed reports"
        if not label.is_spam and (
            label.source != "release" or label.created_by.startswith(END_USER_PREFIXES)
        ):
            return "released by an end user, not an administrator"
        if label.raw is None:
            return "the message is no longer stored"
        if label.virus:
            return "the virus stage flagged it"
        day = datetime.fromtimestamp(label.created_at, UTC).date().isoformat()
        if day != self.day:
            self.day, self.counts = day, {}
        sender, domain = self.keys(label)
        if self.counts.get(sender, 0) >= config.per_sender_per_day:
            return f"{sender} reached {config.per_sender_per_day} updates today"
        if self.counts.get(domain, 0) >= config.per_domain_per_day:
            return f"{domain} reached {config.per_domain_per_day} updates today"
        return None

    def count(self, label: Label) -> None:
        for key in self.keys(label):
            self.counts[key] = self.counts.get(key, 0) + 1

    def metadata(self) -> dict[str, str]:
        return {"learned_day": self.day, "learned_counts": json.dumps(self.counts, sort_keys=True)}


def learn(model: TokenModel, labels: list[Label], config: LearningConfig) -> TokenModel:
    """``model`` after every label the guards let through; ``learned_through`` is the last id."""
    ledger = Ledger.of(model.metadata)
    for label in labels:
        reason = ledger.refusal(label, config)
        if reason is not None:
            log.info("not learning label %d (%s): %s", label.id, label.message_id, reason)
            continue
        assert label.raw is not None
        model = update(model, Mail(label.raw), label.is_spam, rate=config.rate)
        ledger.count(label)
    if not labels:
        return model
    meta = {**model.metadata, **ledger.metadata(), "learned_through": str(labels[-1].id)}
    return replace(model, metadata=meta)


def learned_through(model: TokenModel) -> int:
    return int(model.metadata.get("learned_through", "0"))


def _stamp(path: Path) -> tuple[int, int]:
    """What tells a rewritten model file: its modification time and size."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def save_atomically(model: TokenModel, path: Path) -> None:
    """Write ``path`` so readers see the old file or the new one, never half of one."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        model.save(temporary)
        with temporary.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold ``<path>.lock`` exclusively: one read-learn-write at a time on this file."""
    with open(f"{path}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Learner:
    """Applies new training labels to the model file and hands the result to ``on_model``."""

    def __init__(
        self,
        store: Store,
        path: Path,
        config: LearningConfig,
        on_model: Callable[[TokenModel], Any],
    ) -> None:
        self.store = store
        self.path = path
        self.config = config
        self.on_model = on_model
        self.applied = 0  # labels this process has applied, learned or skipped
        # The label the model in use has learned through: the classifier loaded the file.
        self._seen = _stamp(path)
        self.in_use = learned_through(TokenModel.load(path))

    def _idle(self) -> bool:
        """Nothing to do: no label after the model in use, and nobody rewrote the file.

        Loading the model costs most of a second of CPU; doing it every few seconds
        with nothing to learn took a share of the gateway's one core, so a round first
        asks the store (one indexed row) and the file's stat.
        """
        return _stamp(self.path) == self._seen and not self.store.read(
            pending, self.in_use, limit=1
        )

    def catch_up(self) -> int:
        """Apply the labels waiting in the store; returns how many (blocking: run in a thread)."""
        done = 0
        while True:
            if self._idle():
                return done
            with _exclusive(self.path):
                model = TokenModel.load(self.path)
                labels = self.store.read(pending, learned_through(model))
                if labels:
                    model = learn(model, labels, self.config)
                    save_atomically(model, self.path)
                self._seen = _stamp(self.path)
            # Another process sharing the file may have learned them: use its model too.
            if learned_through(model) > self.in_use:
                self.in_use = learned_through(model)
                self.on_model(model)
            done += len(labels)
            self.applied += len(labels)
            if len(labels) < BATCH:
                return done

    async def run(self) -> None:
        """Catch up every ``interval`` seconds until cancelled; a failed round is retried."""
        while True:
            try:
                if await asyncio.to_thread(self.catch_up):
                    log.info("model learned up to label %d", self.applied)
            except Exception:  # a busy store or unreadable file must not end learning for good
                log.exception("online learning round failed; trying again")
            await asyncio.sleep(self.config.interval)
