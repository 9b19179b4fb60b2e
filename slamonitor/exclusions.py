"""Exclusion windows: when the contract says a service level is not measured, and why.

SPEC 4: latency is not measured during a virus outbreak (virus:email above
1:200 in a 5-minute period), a denial-of-service period or a configuration
fault on the customer's side (their server refusing or timing out, their DNS,
mail loops); no level is measured in a customer's first 30 days, during
planned maintenance, a suspension or events beyond control. Outbreaks are
judged on all traffic, because an outbreak loads the whole service, not one
customer. Only confirmed windows exempt: the queue watch proposes customer
faults and an operator confirms or rejects them.

The report follows the contract's words: any fixed 5-minute period above
1:200 is an outbreak, however little mail it holds. Prometheus judges the
same ratio over a sliding 5 minutes (``mailmoat:virus_outbreak`` in
deploy/prometheus/rules.yml, which holds the paging burn alerts meanwhile);
only its *alert* adds a floor of 200 messages, so one virus in a quiet
period excludes that period here without paging anyone.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, or_, select

from slamonitor.events import DomainWindow, EventArrays
from slamonitor.periods import PERIOD, Month
from store.sla_tables import services, windows

GRACE_DAYS = 30
OUTBREAK_RATIO = 1 / 200


class Kind(enum.StrEnum):
    """Why a window is excluded; outbreaks, DoS and customer faults only exempt latency."""

    OUTBREAK = "outbreak"
    DOS = "dos"
    CUSTOMER_FAULT = "customer_fault"
    MAINTENANCE = "maintenance"
    SUSPENSION = "suspension"
    BEYOND_CONTROL = "beyond_control"
    FIRST_30_DAYS = "first_30_days"


class State(enum.StrEnum):
    """A window's standing: proposed ones (from the probe) wait for an operator."""

    PROPOSED = "proposed"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


LATENCY_ONLY = frozenset({Kind.OUTBREAK, Kind.DOS, Kind.CUSTOMER_FAULT})
DECLARED = (Kind.DOS, Kind.CUSTOMER_FAULT, Kind.MAINTENANCE, Kind.SUSPENSION, Kind.BEYOND_CONTROL)
"""The kinds an operator declares over REST; the others are derived."""
PER_DOMAIN = frozenset({Kind.CUSTOMER_FAULT, Kind.SUSPENSION})
"""Kinds that are about one customer, so they must name its domain."""


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open UNIX-second range in which ``domain`` (None: every domain) is not measured."""

    kind: Kind
    start: float
    end: float
    domain: str | None
    reason: str

    def covers(self, domain: str, when: float) -> bool:
        return (self.domain is None or self.domain == domain) and self.start <= when < self.end


def declared_and_grace(conn: Connection, month: Month, domain: str | None) -> list[Window]:
    """Declared windows and first-30-days periods overlapping ``month`` for ``domain`` (or all)."""
    start, end = month.start, month.end
    query = select(windows).where(
        windows.c.start_at < end, windows.c.end_at > start, windows.c.state == State.CONFIRMED
    )
    if domain is not None:
        query = query.where(or_(windows.c.domain.is_(None), windows.c.domain == domain))
    found = [
        Window(Kind(r.kind), r.start_at, r.end_at, r.domain, r.reason)
        for r in conn.execute(query.order_by(windows.c.start_at, windows.c.id))
    ]
    grace = GRACE_DAYS * 86400.0
    started = select(services).where(
        services.c.started_at < end, services.c.started_at + grace > start
    )
    if domain is not None:
        started = started.where(services.c.domain == domain)
    for r in conn.execute(started.order_by(services.c.domain)):
        reason = f"first {GRACE_DAYS} days of service (started {r.started_at:.0f})"
        found.append(
            Window(Kind.FIRST_30_DAYS, r.started_at, r.started_at + grace, r.domain, reason)
        )
    # A row gets the code of the first domain window it is in, so windows that exempt every
    # level come before latency-only ones: a row in both is then exempt from everything.
    return sorted(found, key=lambda w: (w.domain is not None, w.kind in LATENCY_ONLY))


def domain_scoped(found: Sequence[Window]) -> list[DomainWindow]:
    """The windows the event loader marks per row (see ``events``), in ``found`` order."""
    return [DomainWindow(w.domain, w.start, w.end) for w in found if w.domain is not None]


@dataclass(frozen=True, slots=True)
class Outbreaks:
    """Outbreak windows, the selected events in each, and which events fall in any of them."""

    windows: list[Window]
    counts: list[int]
    mask: NDArray[np.bool_]


def outbreaks(events: EventArrays, ratio: float = OUTBREAK_RATIO) -> Outbreaks:
    """5-minute periods whose virus share of all mail is above ``ratio``, merged when adjacent.

    Worked out per period index, not per window: a month can hold thousands of them.
    """
    period = (events.at // PERIOD).astype(np.int64)
    total = np.bincount(period)
    virus = np.bincount(period, weights=events.virus, minlength=total.size)
    selected = np.bincount(period[events.selected], minlength=total.size)
    hot = virus > ratio * total
    found: list[Window] = []
    counts: list[int] = []
    base = events.month.start
    for p in np.flatnonzero(hot).tolist():
        start, end = base + p * PERIOD, base + (p + 1) * PERIOD
        reason = f"{int(virus[p])} viruses in {int(total[p])} messages (above 1:{1 / ratio:.0f})"
        if found and found[-1].end == start:
            last = found[-1]
            found[-1] = Window(Kind.OUTBREAK, last.start, end, None, last.reason + "; " + reason)
            counts[-1] += int(selected[p])
        else:
            found.append(Window(Kind.OUTBREAK, start, end, None, reason))
            counts.append(int(selected[p]))
    return Outbreaks(found, counts, hot[period])


def window_masks(events: EventArrays, found: Sequence[Window]) -> Iterator[NDArray[np.bool_]]:
    """For each declared window in turn, which events fall in it (domain ones via the codes).

    A generator: one mask at a time is alive, whatever the number of windows.
    """
    base = events.month.start
    code = 0
    for w in found:
        if w.domain is None:
            yield (events.at >= w.start - base) & (events.at < w.end - base)
        else:
            # The loader tagged each row with the first domain window it falls in, so a
            # row in two overlapping windows of one domain counts for the first only.
            code += 1
            yield events.window == code


def excluded_at(found: Sequence[Window], domain: str, when: float, latency: bool) -> Window | None:
    """The first window exempting ``domain`` at ``when``; ``latency`` also allows latency-only."""
    for w in found:
        if (latency or w.kind not in LATENCY_ONLY) and w.covers(domain, when):
            return w
    return None
