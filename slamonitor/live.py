"""Month-to-date SLA gauges for /metrics: every level, its target, error budget, alert states.

Computing the month reads every event of it (seconds at 10 million rows),
so figures are cached and recomputed at most every ``cache_seconds``;
alert states come from ``sla_alerts`` (cheap) at every scrape, so a queue
alert shows within one scrape whichever process raised it. Register one
collector per exposition registry (in multiprocess mode, on the merged one).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from slamonitor.config import SlaSettings
from slamonitor.periods import Month
from slamonitor.probe import Clock
from slamonitor.report import build
from store.sla_tables import alerts, availability

log = logging.getLogger("mailmoat.sla.live")

AT_LEAST = ("latency", "availability")
AT_MOST = ("false_positives", "false_negatives")
_RATIO_NAMES = {
    "latency": (
        "latency_within_target_ratio",
        "Month-to-date share of messages delivered within 2 minutes.",
    ),
    "false_positives": ("false_positive_ratio", "Month-to-date false positives per message."),
    "false_negatives": (
        "false_negative_ratio",
        "Month-to-date false negatives per anti-spam message.",
    ),
    "availability": ("availability_ratio", "Month-to-date share of SMTP probes that succeeded."),
}


def budget_remaining(level: str, measured: float, target: float) -> float:
    """Share of the error budget left: 1 untouched, 0 spent, negative overspent."""
    if level in AT_LEAST:
        return 1.0 - (1.0 - measured) / (1.0 - target)
    return 1.0 - measured / target


@dataclass(frozen=True, slots=True)
class _Figures:
    computed_at: float
    levels: dict[str, dict[str, object]]


class SlaCollector(Collector):
    """A custom collector; ``clock`` is injected so tests run on virtual time."""

    def __init__(self, engine: Engine, clock: Clock, settings: SlaSettings | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.settings = settings or SlaSettings()
        self._figures: _Figures | None = None
        self._lock = threading.Lock()

    def figures(self) -> _Figures:
        """The cached month-to-date levels, recomputed when older than the cache time."""
        now = self.clock()
        with self._lock:
            cached = self._figures
            fresh = (
                cached is not None and now - cached.computed_at < self.settings.live_cache_seconds
            )
            if (
                cached is None
                or not fresh
                or not Month.containing(cached.computed_at, self.settings.timezone).contains(now)
            ):
                month = Month.containing(now, self.settings.timezone)
                report = build(self.engine, month, self.settings, now=now)
                levels = report.data["levels"]
                assert isinstance(levels, dict)
                self._figures = _Figures(now, levels)
            assert self._figures is not None
            return self._figures

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Nothing to describe up front: registration must not read the store.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        try:
            figures = self.figures()
            states = self._alert_states()
        except Exception:
            # A broken store must not take the gateway's other metrics down with it.
            log.exception("cannot compute SLA figures; mailmoat_sla_* left out of this scrape")
            return
        yield from self._levels(figures)
        alert = Metric("mailmoat_sla_alert", "1 while an SLA alert fires.", "gauge")
        for (name, domain), firing in sorted(states.items()):
            # Gateway-wide alerts carry no domain label rather than an empty one.
            labels = {"alert": name, "domain": domain} if domain else {"alert": name}
            alert.add_sample("mailmoat_sla_alert", labels, 1.0 if firing else 0.0)
        yield alert

    def _levels(self, figures: _Figures) -> Iterator[GaugeMetricFamily]:
        target = GaugeMetricFamily(
            "mailmoat_sla_target_ratio", "Target of each service level.", labels=["level"]
        )
        budget = GaugeMetricFamily(
            "mailmoat_sla_error_budget_remaining_ratio",
            "Share of the month's error budget left.",
            labels=["level"],
        )
        for level, (name, doc) in _RATIO_NAMES.items():
            values = figures.levels[level]
            goal, measured = values["target"], values["measured"]
            assert isinstance(goal, float)
            target.add_metric([level], goal)
            gauge = GaugeMetricFamily(f"mailmoat_sla_{name}", doc)
            if isinstance(measured, float):
                gauge.add_metric([], measured)
                budget.add_metric([level], budget_remaining(level, measured, goal))
            yield gauge
        helpdesk = GaugeMetricFamily(
            "mailmoat_sla_helpdesk_within_target_ratio",
            "Month-to-date share of tickets answered in time.",
            labels=["priority"],
        )
        priorities = figures.levels["helpdesk"]["priorities"]
        assert isinstance(priorities, dict)
        for priority, values in priorities.items():
            target.add_metric([f"helpdesk_{priority.lower()}"], values["target"])
            if values["measured"] is not None:
                helpdesk.add_metric([priority], values["measured"])
        releases = GaugeMetricFamily(
            "mailmoat_sla_virus_release_within_target_ratio",
            "Month-to-date share of virus releases done within 8 business hours.",
        )
        if figures.levels["virus_release"]["measured"] is not None:
            releases.add_metric([], figures.levels["virus_release"]["measured"])  # type: ignore[arg-type]
        escaped = GaugeMetricFamily(
            "mailmoat_sla_viruses_not_stopped", "Month-to-date viruses detected but delivered."
        )
        escaped.add_metric([], float(figures.levels["virus"]["detected_not_stopped"]))  # type: ignore[arg-type]
        computed = GaugeMetricFamily(
            "mailmoat_sla_computed_timestamp_seconds",
            "When the month-to-date figures were computed.",
        )
        computed.add_metric([], figures.computed_at)
        yield from (target, budget, helpdesk, releases, escaped, computed)

    def _alert_states(self) -> dict[tuple[str, str], bool]:
        """Latest state of every alert the monitor has recorded, plus the SMTP probe's."""
        latest = select(func.max(alerts.c.id)).group_by(alerts.c.alert, alerts.c.domain)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(alerts.c.alert, alerts.c.domain, alerts.c.state).where(
                    alerts.c.id.in_(latest)
                )
            ).all()
            last = conn.execute(
                select(availability.c.up).order_by(availability.c.at.desc()).limit(1)
            ).scalar()
        states = {(a, d or ""): s == "firing" for a, d, s in rows}
        states[("smtp_down", "")] = last is not None and not last
        figures = self._figures
        if figures is not None:
            escaped = figures.levels["virus"]["detected_not_stopped"]
            states[("virus_not_stopped", "")] = bool(escaped)
        return states
