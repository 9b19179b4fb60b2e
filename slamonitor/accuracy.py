"""False positives and negatives (SPEC 4): counts, rates, and how much the traffic can prove.

Ground truth is the union of labels (a replayed corpus, ``sla_labels``) and
claims that count (``claims.COUNTED``). A false positive is not counted when
the message had more than 20 recipients (which also covers the contract's
bulk rule: bulk needs more than 20 recipients), its sender was on the
customer's own blacklist, or on a third-party block list; nor, for either
kind, inside a window where no level is measured.

Confidence: the one-sided Clopper-Pearson upper bound ``u`` on the true rate
at confidence ``c`` is the ``p`` with ``P(X <= k | n, p) = 1 - c``. With zero
errors it is ``1 - (1 - c) ** (1 / n)``, so showing ``rate <= p`` needs
``n >= ln(1 - c) / ln(1 - p)`` messages: 748,932 for 0.0004% at 95%.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, and_, select

from slamonitor.claims import BLOCKED, COUNTED, FN, FP, record_fn_report, record_fp_claim
from slamonitor.exclusions import Window, excluded_at
from slamonitor.periods import Month
from slamonitor.stats import upper_bound
from store.schema import events
from store.sla_tables import claims, labels

FP_TARGET = 0.000004
FN_TARGET = 0.05
CONFIDENCE = 0.95
MAX_RECIPIENTS = 20
_BATCH = 500
THIRD_PARTY = frozenset({"BLACKLIST_DNSBL", "BLACKLIST_URIBL"})


@dataclass(frozen=True, slots=True)
class Accuracy:
    """One month's false-positive or false-negative figures."""

    kind: str
    errors: int
    traffic: int
    target: float
    excluded: list[dict[str, str]] = field(default_factory=list)
    confidence: float = CONFIDENCE

    @property
    def rate(self) -> float | None:
        return self.errors / self.traffic if self.traffic else None

    @property
    def upper(self) -> float | None:
        return upper_bound(self.errors, self.traffic, self.confidence) if self.traffic else None

    def to_dict(self) -> dict[str, object]:
        rate, upper = self.rate, self.upper
        return {
            "target": self.target,
            "measured": rate,
            "met": None if rate is None else rate <= self.target,
            "errors": self.errors,
            "traffic": self.traffic,
            "confidence": self.confidence,
            "upper_bound": upper,
            "target_shown_at_confidence": None if upper is None else upper <= self.target,
            "messages_needed_with_zero_errors": needed(self.target, self.confidence),
            "excluded": self.excluded,
        }


def needed(rate: float, confidence: float = CONFIDENCE) -> int:
    """Messages needed, with no errors at all, to show the true rate is at most ``rate``."""
    return math.ceil(math.log(1 - confidence) / math.log1p(-rate))


def _candidates(
    conn: Connection, kind: str, month: Month, domain: str | None
) -> set[tuple[str, str]]:
    """(message id, domain) pairs that ground truth calls errors of ``kind`` in ``month``."""
    claimed = select(claims.c.message_id, claims.c.domain).where(
        claims.c.kind == kind,
        claims.c.state.in_(COUNTED),
        claims.c.received_at >= month.start,
        claims.c.received_at < month.end,
    )
    if domain is not None:
        claimed = claimed.where(claims.c.domain == domain)
    found = {(m, d) for m, d in conn.execute(claimed)}
    wrong = (
        events.c.outcome.in_(BLOCKED)
        if kind == FP
        else and_(events.c.outcome == "delivered", events.c.category != "spam")
    )
    label = "ham" if kind == FP else "spam"
    ids = conn.execute(select(labels.c.message_id).where(labels.c.label == label)).scalars().all()
    # Labels are few (a replayed corpus), so events are looked up by message id in batches;
    # one join lets SQLite pick the received-time index and walk the whole month instead.
    for i in range(0, len(ids), _BATCH):
        labelled = select(events.c.message_id, events.c.domain).where(
            events.c.message_id.in_(ids[i : i + _BATCH]),
            events.c.received_at >= month.start,
            events.c.received_at < month.end,
            wrong,
        )
        if domain is not None:
            labelled = labelled.where(events.c.domain == domain)
        found.update((m, d) for m, d in conn.execute(labelled))
    return found


def _fp_reason(hits: list[dict[str, str]], recipients: int) -> str | None:
    if recipients > MAX_RECIPIENTS:
        return f"{recipients} recipients (more than {MAX_RECIPIENTS}; includes bulk)"
    for hit in hits:
        symbol = hit.get("symbol", "")
        if symbol == "BLACKLIST_PRIVATE" and "global blacklist" not in hit.get("reason", ""):
            return "sender on the customer's blacklist"
        if symbol in THIRD_PARTY:
            return f"sender on a third-party block list ({symbol})"
    return None


def measure(
    conn: Connection,
    kind: str,
    month: Month,
    domain: str | None,
    traffic: int,
    found: Sequence[Window],
) -> Accuracy:
    """Count ``kind`` errors against ``traffic`` (events measured), applying the exclusions."""
    pairs = _candidates(conn, kind, month, domain)
    ids = sorted({m for m, _ in pairs})
    rows = conn.execute(
        select(
            events.c.message_id,
            events.c.domain,
            events.c.received_at,
            events.c.hits,
            events.c.recipients,
        ).where(events.c.message_id.in_(ids))
    ).all()
    recipients: dict[str, int] = {}
    for r in rows:
        # The contract counts the message's recipients, over every domain it went to.
        recipients[r.message_id] = recipients.get(r.message_id, 0) + r.recipients
    errors = 0
    excluded = []
    for r in sorted(rows, key=lambda r: (r.received_at, r.message_id, r.domain)):
        if (r.message_id, r.domain) not in pairs:
            continue
        pairs.discard((r.message_id, r.domain))
        window = excluded_at(found, r.domain, r.received_at, latency=False)
        reason = window and f"{window.kind}: {window.reason}"
        if kind == FP and reason is None:
            reason = _fp_reason(json.loads(r.hits), recipients[r.message_id])
        if reason is None:
            errors += 1
        else:
            excluded.append({"message_id": r.message_id, "domain": r.domain, "reason": reason})
    target = FP_TARGET if kind == FP else FN_TARGET
    return Accuracy(kind, errors, traffic, target, excluded)


# The quarantine files claims on release through this module, as the issue names it.
__all__ = ["FN", "FP", "Accuracy", "measure", "needed", "record_fn_report", "record_fp_claim"]
