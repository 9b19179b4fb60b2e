"""The gateway's metrics as a Prometheus server would have scraped them, once a minute, all month.

Counters at a scrape are the events that happened by then: verdicts by
filter time, round trips (and the 2-minute bucket) by delivery time. Only
the series ``deploy/prometheus/rules.yml`` reads are written, and a queue
alert's series only for domains where it ever fired (a series of zeros
alerts on nothing), which keeps a month at 1-minute resolution near a
million samples whatever the traffic.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from filters.verdict import Action
from simulator.engine import Run
from simulator.mix import DELIVERED, REDIRECTED, VIRUS
from simulator.watch import Watch

SCRAPE = 60.0
BUCKETS = (60.0, 120.0, 300.0)
ACTIONS = [a.label for a in sorted(Action)]


@dataclass(frozen=True, slots=True)
class Series:
    """One metric family: OpenMetrics type, and per label set its value at every scrape."""

    name: str
    kind: str
    samples: list[tuple[str, NDArray[np.float64]]]


def _cumulative(times: NDArray[np.float64], at: NDArray[np.float64]) -> NDArray[np.float64]:
    counted: NDArray[np.float64] = np.searchsorted(np.sort(times), at, side="right").astype(
        np.float64
    )
    return counted


def series(run: Run, seen: Watch) -> tuple[NDArray[np.float64], list[Series]]:
    """Scrape times and every family, computed with searchsorted on sorted event times."""
    at = np.arange(run.start, run.end, SCRAPE)
    went = np.isin(run.outcome, (DELIVERED, REDIRECTED)) & ~np.isnan(run.delivered)
    done = run.delivered[went]
    took = done - run.received[went]
    order = np.argsort(done)
    sums = np.concatenate(([0.0], np.cumsum(took[order])))
    count = _cumulative(done, at)
    e2e = "mailmoat_end_to_end_duration_seconds"
    buckets = [(f'{{le="{b}"}}', _cumulative(done[took <= b], at)) for b in BUCKETS]
    histogram = [
        *((f"{e2e}_bucket{labels}", values) for labels, values in buckets),
        (f'{e2e}_bucket{{le="+Inf"}}', count),
        (f"{e2e}_count", count),
        (f"{e2e}_sum", sums[count.astype(np.int64)]),
    ]
    verdicts = []
    names = sorted(set(run.mix.category))
    codes = np.array([names.index(c) for c in run.mix.category], dtype=np.int8)
    category = codes[run.arrivals.message]
    for a in np.unique(run.action).tolist():
        for c in np.unique(category).tolist():
            mine = (run.action == a) & (category == c)
            if mine.any():
                labels = f'{{action="{ACTIONS[a]}",category="{names[c]}"}}'
                verdicts.append(
                    (f"mailmoat_verdicts_total{labels}", _cumulative(run.filtered[mine], at))
                )
    virus = run.mix.label[run.arrivals.message] == VIRUS
    escaped = _cumulative(run.delivered[virus & (run.outcome == DELIVERED)], at)
    alerts = [('mailmoat_sla_alert{alert="smtp_down"}', (~seen.up).astype(np.float64))]
    alerts += [
        (f'mailmoat_sla_alert{{alert="{name}",domain="{domain}"}}', state.astype(np.float64))
        for (name, domain), state in sorted(seen.firing.items())
    ]
    return at, [
        Series(e2e, "histogram", histogram),
        Series("mailmoat_verdicts", "counter", verdicts),
        Series("mailmoat_sla_alert", "gauge", alerts),
        Series("mailmoat_sla_viruses_not_stopped", "gauge",
               [("mailmoat_sla_viruses_not_stopped", escaped)]),
        Series("mailmoat_sla_computed_timestamp_seconds", "gauge",
               [("mailmoat_sla_computed_timestamp_seconds", at.copy())]),
    ]  # fmt: skip


def lines(
    at: NDArray[np.float64], families: list[Series], lo: int = 0, hi: int | None = None
) -> Iterator[str]:
    """OpenMetrics text for scrapes ``lo:hi``: each family whole, each series in time order."""
    stamps = [f"{t:.3f}" for t in at[lo:hi].tolist()]
    for family in families:
        yield f"# TYPE {family.name} {family.kind}\n"
        for name, values in family.samples:
            for v, t in zip(values[lo:hi].tolist(), stamps, strict=True):
                yield f"{name} {v:.17g} {t}\n"
    yield "# EOF\n"
