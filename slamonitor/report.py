"""The monthly SLA report: every level, its target, the measured value, met or missed, and why.

``build`` reads the store once per source (events as numpy arrays, the small
tables with SQL) and returns the JSON-ready figures plus the series the HTML
report plots. "Met" is None when there was nothing to measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine, select

from slamonitor import accuracy, availability, helpdesk, usage, virus_release
from slamonitor.claims import FN, FP
from slamonitor.config import SlaSettings
from slamonitor.events import EventArrays, load_events
from slamonitor.exclusions import (
    LATENCY_ONLY,
    Outbreaks,
    Window,
    declared_and_grace,
    domain_scoped,
    outbreaks,
    window_masks,
)
from slamonitor.latency import latency, period_averages
from slamonitor.periods import Month
from slamonitor.tickets import Ticket, list_tickets
from store.sla_tables import alerts, queue_samples


@dataclass(frozen=True, slots=True)
class Report:
    """``data`` is the JSON report; the arrays feed the plots."""

    data: dict[str, object]
    latencies: NDArray[np.float64]
    period_starts: NDArray[np.float64]
    period_averages: NDArray[np.float64]
    queues: dict[str, tuple[list[float], list[int]]]


def iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


def _row(w: Window, events: int) -> dict[str, object]:
    return {
        "kind": str(w.kind),
        "domain": w.domain,
        "start": iso(w.start),
        "end": iso(w.end),
        "reason": w.reason,
        "levels": "latency" if w.kind in LATENCY_ONLY else "all",
        "events": events,
    }


def _exclusions(
    events: EventArrays, declared: list[Window], hot: Outbreaks
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], list[dict[str, object]]]:
    """Events exempt from every level, from latency, and one row per window for the report."""
    every = np.zeros(len(events), dtype=np.bool_)
    some = hot.mask.copy()
    rows = []
    for w, mask in zip(declared, window_masks(events, declared), strict=True):
        np.logical_or(some, mask, out=some)
        if w.kind not in LATENCY_ONLY:
            np.logical_or(every, mask, out=every)
        rows.append(_row(w, int(np.count_nonzero(mask & events.selected))))
    rows += [_row(w, n) for w, n in zip(hot.windows, hot.counts, strict=True)]
    return every, some, rows


def _queues(
    conn: Connection, month: Month, domain: str | None
) -> dict[str, tuple[list[float], list[int]]]:
    query = (
        select(queue_samples.c.domain, queue_samples.c.at, queue_samples.c.length)
        .where(queue_samples.c.at >= month.start, queue_samples.c.at < month.end)
        .order_by(queue_samples.c.at)
    )
    if domain is not None:
        query = query.where(queue_samples.c.domain == domain)
    series: dict[str, tuple[list[float], list[int]]] = {}
    for d, at, length in conn.execute(query):
        times, lengths = series.setdefault(d, ([], []))
        times.append(at)
        lengths.append(length)
    return series


def _alerts(conn: Connection, month: Month, domain: str | None) -> list[dict[str, object]]:
    query = select(alerts).where(alerts.c.at >= month.start, alerts.c.at < month.end)
    if domain is not None:
        query = query.where(alerts.c.domain == domain)
    return [
        {
            "at": iso(r.at),
            "alert": r.alert,
            "domain": r.domain,
            "state": r.state,
            "detail": r.detail,
        }
        for r in conn.execute(query.order_by(alerts.c.at, alerts.c.id))
    ]


def _helpdesk(
    settings: SlaSettings, tickets: list[Ticket], domain: str | None, now: float
) -> dict[str, object]:
    """Tickets held to their domain's table: the default one, plus one entry per other plan."""
    default = settings.table(domain)
    by_table: dict[str, tuple[helpdesk.HelpdeskTable, list[helpdesk.TicketTimes]]] = {
        default.name: (default, [])
    }
    for t in tickets:
        table = settings.table(t.domain)
        by_table.setdefault(table.name, (table, []))[1].append(t.times)
    result: dict[str, object] = {
        "table": default.name,
        "priorities": helpdesk.measure(default, by_table.pop(default.name)[1], now),
    }
    if by_table:
        result["plans"] = {
            name: helpdesk.measure(table, times, now) for name, (table, times) in by_table.items()
        }
    return result


def build(
    engine: Engine, month: Month, settings: SlaSettings, *, now: float, domain: str | None = None
) -> Report:
    """The report for ``month`` (``domain`` or every domain), judged as of ``now``."""
    with engine.connect() as conn:
        declared = declared_and_grace(conn, month, domain)
    events = load_events(engine, month, domain=domain, domain_windows=domain_scoped(declared))
    hot = outbreaks(events)
    found = declared + hot.windows
    every, some, excluded = _exclusions(events, declared, hot)
    measured = events.selected & ~every
    lat_include = events.selected & ~some
    starts, averages = period_averages(events, lat_include)
    lat = latency(events, lat_include, averages)
    traffic = int(np.count_nonzero(measured))
    spam_traffic = int(np.count_nonzero(measured & ~events.virus))
    escaped = int(np.count_nonzero(events.selected & events.virus & events.delivered))
    with engine.connect() as conn:
        fp = accuracy.measure(conn, FP, month, domain, traffic, found)
        fn = accuracy.measure(conn, FN, month, domain, spam_traffic, found)
        avail = availability.measure(conn, month, domain, found)
        domains = None if domain is None else frozenset({domain})
        tickets = list_tickets(conn, domains, month=month)
        releases = virus_release.measure(conn, month, domain, settings.virus_release_hours, now)
        queues = _queues(conn, month, domain)
        alert_rows = _alerts(conn, month, domain)
        used = usage.measure(conn, month, domain, settings.registered_users)
    data: dict[str, object] = {
        "month": month.label,
        "time_zone": month.tz,
        "start": iso(month.start),
        "end": iso(month.end),
        "domain": domain,
        "generated_at": iso(now),
        "events": {
            "received": int(np.count_nonzero(events.selected)),
            "measured": traffic,
            "excluded": int(np.count_nonzero(events.selected & every)),
            "excluded_from_latency": int(np.count_nonzero(events.selected & some)),
        },
        "levels": {
            "latency": lat.to_dict(),
            "false_positives": fp.to_dict(),
            "false_negatives": fn.to_dict(),
            "virus": {
                "target": "notify when a virus was detected but not stopped",
                "detected_not_stopped": escaped,
                "met": escaped == 0,
            },
            "availability": avail.to_dict(),
            "helpdesk": _helpdesk(settings, tickets, domain, now),
            "virus_release": releases,
        },
        "usage": used,
        "exclusions": excluded,
        "alerts": alert_rows,
    }
    return Report(
        data=data,
        latencies=events.latency[lat_include & ~np.isnan(events.latency)],
        period_starts=starts + month.start,
        period_averages=averages,
        queues=queues,
    )
