"""Every gateway metric on one injected registry, label values bounded against hostile input.

Label values that come from mail or DNS (recipient domains, block-list zones,
hit symbols) are checked against what config and code define (symbols against
the registry ``filters.symbols.SYMBOLS``); anything else is folded into
``FOLDED`` so an attacker, or a stage naming a hit it never registered,
cannot mint new time series.

Multiprocess mode (``--workers N``): when ``PROMETHEUS_MULTIPROC_DIR`` is set
before ``prometheus_client`` is imported, counters, histograms and the
sessions gauge write to per-process files in that directory, and a scrape
(served by any one worker) merges them with ``MultiProcessCollector`` on a
fresh registry built by ``exposition_registry``. The per-domain queue gauge is
not a file-backed metric: its collector calls ``queue_lengths`` at scrape time
and is added to that fresh registry once, so whichever worker answers reports
the queue exactly once. That callback must therefore read the shared spool,
not per-process counts, in multiprocess mode.
"""

from __future__ import annotations

import enum
import importlib.metadata
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from filters.facts import LookupStatus
from filters.symbols import SYMBOLS
from filters.verdict import Action, Category, Verdict
from service.virus_alerts import Party, Skipped
from store.records import Direction

log = logging.getLogger(__name__)

# A `_created` series per counter doubles the series count and no dashboard or rule reads it.
disable_created_metrics()  # type: ignore[no-untyped-call]

FOLDED = "_other"
"""The label value for a domain, zone or symbol that config and code do not define.

The leading underscore keeps it from ever equalling a real mail domain.
"""

SLA_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Seconds; 120 is the latency target of SPEC 4, so the SLA share is one bucket ratio."""

DNS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds; block-list lookups should take milliseconds and time out within seconds."""

QueueLengths = Callable[[], Mapping[str, int]]


class AttemptResult(enum.StrEnum):
    """How one delivery attempt ended; the ``result`` label of delivery attempts."""

    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    EXPIRED = "expired"


class AttemptReason(enum.StrEnum):
    """Why a delivery attempt ended as it did; the ``reason`` label of delivery attempts.

    The same split postfix_exporter gives operators: was the next hop unknown,
    unreachable, or did it answer and refuse?
    """

    OK = "ok"
    NO_ROUTE = "no_route"  # no MX or route for the domain, for good
    ROUTE_UNAVAILABLE = "route_unavailable"  # the route lookup failed for now (DNS)
    CONNECTION = "connection"  # no SMTP reply: refused, timed out, TLS or protocol failure
    REPLY = "reply"  # the next hop answered with a 4xx or 5xx reply
    LOCAL = "local"  # our own error (an address we cannot send, an unexpected exception)
    MAX_AGE = "max_age"  # retried for the whole retry period


REASONS_BY_RESULT: dict[AttemptResult, tuple[AttemptReason, ...]] = {
    AttemptResult.DELIVERED: (AttemptReason.OK,),
    AttemptResult.DEFERRED: (
        AttemptReason.ROUTE_UNAVAILABLE,
        AttemptReason.CONNECTION,
        AttemptReason.REPLY,
        AttemptReason.LOCAL,
    ),
    AttemptResult.BOUNCED: (
        AttemptReason.NO_ROUTE,
        AttemptReason.CONNECTION,
        AttemptReason.REPLY,
        AttemptReason.LOCAL,
    ),
    AttemptResult.EXPIRED: (AttemptReason.MAX_AGE,),
}
"""The label pairs that can occur; each starts at zero so ``rate()`` works from the start."""

STORE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds; a commit (with its fsync) takes milliseconds on a healthy disk."""


class StoreOp(enum.StrEnum):
    """The ``op`` label of store commit durations."""

    SPOOL = "spool"  # the group commit of accepted messages before their 250
    OUTCOME = "outcome"  # the group commit of filtering outcomes (StoreWriter.record)
    DELIVERY = "delivery"  # the group commit of ended deliveries (StoreWriter.finish)
    WRITE = "write"  # every other transaction: verdicts, deliveries, quarantine, reports


class FilterStage(enum.StrEnum):
    """The timed steps of filtering one message; the ``stage`` label of stage durations."""

    ENRICH = "enrich"
    EVALUATE = "evaluate"


class RejectReason(enum.StrEnum):
    """Why the SMTP server refused a command; the ``reason`` label of rejections."""

    RELAY_DENIED = "relay_denied"
    SIZE = "size"
    RECIPIENTS = "recipients"
    SYNTAX = "syntax"
    SEQUENCE = "sequence"
    LINE_LENGTH = "line_length"
    COMMANDS = "commands"
    TLS_REQUIRED = "tls_required"
    UNAVAILABLE = "unavailable"
    BUSY = "busy"
    SESSIONS = "sessions"
    AUTH_REQUIRED = "auth_required"
    WRONG_SENDER = "wrong_sender"
    RATE_LIMITED = "rate_limited"
    AUTH_FAILED = "auth_failed"


def multiprocess_dir() -> str | None:
    """The directory shared by worker processes, or None when running as one process."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (sessions open) so they stop counting.

    The process that supervises ``--workers N`` calls this when a worker ends.
    """
    path = multiprocess_dir()
    if path is not None:
        # prometheus_client's multiprocess module has no annotations.
        mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def _normalise(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _known(names: Sequence[str], what: str) -> frozenset[str]:
    known = frozenset(_normalise(n) for n in names)
    if "" in known or FOLDED in known:
        raise ValueError(f"invalid {what} for metric labels: {sorted(known)!r}")
    return known


class QueueCollector:
    """Reads per-domain queue lengths live at every scrape, registered domains only."""

    NAME = "mailmoat_queue_messages"
    HELP = "Messages waiting for delivery, by recipient domain."

    def __init__(self, domains: frozenset[str], read: QueueLengths) -> None:
        self._domains = domains
        self._read = read

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Lets the registry check names without calling into the store at registration.
        yield GaugeMetricFamily(self.NAME, self.HELP, labels=["domain"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            lengths = self._read()
        except Exception:
            # A broken store must not take every other metric down with it; the series'
            # absence is what an operator alerts on.
            log.exception("cannot read queue lengths; %s left out of this scrape", self.NAME)
            return
        totals = dict.fromkeys(sorted(self._domains), 0)
        for domain, count in lengths.items():
            label = _normalise(domain)
            label = label if label in self._domains else FOLDED
            totals[label] = totals.get(label, 0) + count
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["domain"])
        for domain, count in totals.items():
            family.add_metric([domain], count)
        yield family


class BuildInfo:
    """``mailmoat_build_info{version}`` = 1: which release is running, for dashboards and alerts."""

    def __init__(self) -> None:
        try:
            self.version = importlib.metadata.version("mailmoat")
        except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
            self.version = "unknown"

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self.collect()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "mailmoat_build_info", "The running Mailmoat release; always 1.", labels=["version"]
        )
        family.add_metric([self.version], 1.0)
        yield family


class GatewayMetrics:
    """The gateway's counters, histograms and gauges, with one thin method per event.

    ``queue_lengths`` is called from the scrape's worker thread: it must be
    thread-safe and quick (return a snapshot, not query per domain).
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        domains: Sequence[str],
        zones: Sequence[str] = (),
        queue_lengths: QueueLengths,
    ) -> None:
        self._domains = _known(domains, "domains")
        self._zones = _known(zones, "zones")
        self.queue_collector = QueueCollector(self._domains, queue_lengths)
        self.registry = registry
        self.live: list[Collector] = []
        self.add_live(self.queue_collector)
        # Process (CPU, memory, fds), Python and GC figures; in multiprocess mode the answering
        # worker's own (worker 0 serves HTTP).
        # These register themselves; ``live`` carries them to a merged multiprocess scrape.
        self.live.extend(
            (
                ProcessCollector(registry=registry),
                PlatformCollector(registry=registry),
                GCCollector(registry=registry),
            )
        )
        self.add_live(BuildInfo())

        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(f"mailmoat_{name}", doc, labels, registry=registry)

        # ``direction``: inbound (port 25) or outbound (the submission listener).
        self._received = counter(
            "messages_received", "Mail transactions begun (MAIL FROM).", ["direction"]
        )
        self._accepted = counter(
            "messages_accepted", "Messages answered 250 after DATA, spooled.", ["direction"]
        )
        self._rejected = counter(
            "messages_rejected",
            "SMTP commands refused with a 4xx/5xx reply (a session can have several).",
            ["reason", "direction"],
        )
        self._delivered = counter(
            "messages_delivered", "Messages and redirects delivered downstream.", ["domain"]
        )
        self._deferred = counter(
            "messages_deferred",
            "Delivery attempts that failed temporarily; every retry counts once.",
            ["domain"],
        )
        self._bounced = counter(
            "messages_bounced", "Deliveries refused downstream for good (5xx).", ["domain"]
        )
        self._expired = counter(
            "messages_expired", "Deliveries dropped after the retry period.", ["domain"]
        )
        self._attempts = counter(
            "delivery_attempts",
            "Delivery attempts of every kind (mail, copies, DSNs, notices) by result and reason.",
            ["domain", "result", "reason"],
        )
        self._verdicts = counter(
            "verdicts", "Filter verdicts.", ["action", "category", "direction"]
        )
        self._filter_restarts = counter(
            "filter_restarts", "Filter process pools replaced after a child died or hung."
        )
        self._unscanned = counter(
            "messages_unscanned", "Messages held as unscanned after filtering failed repeatedly."
        )
        self._hits = counter("filter_hits", "Filter hits by stage and symbol.", ["stage", "symbol"])
        self._dns_failures = counter(
            "dns_failures", "DNS block-list lookups that timed out or failed.", ["zone"]
        )
        self._dns_lookups = counter(
            "dnsbl_lookups",
            "DNS block-list lookups by result: listed, not_listed, timeout, error.",
            ["zone", "result"],
        )
        self._releases = counter(
            "quarantine_releases", "Quarantined messages released, by category.", ["category"]
        )
        self._virus_alerts = counter(
            "virus_alerts", "Virus alerts queued, by whom they tell: sender, recipient, admin.",
            ["party"],
        )  # fmt: skip
        self._virus_alerts_skipped = counter(
            "virus_alerts_skipped",
            "Virus alerts a setting asked for but not sent (null or forged sender, loop...).",
            ["reason"],
        )
        self._quarantine_full = counter(
            "quarantine_full_deferrals",
            "Times a virus stayed spooled because its domain's quarantine was full.",
        )
        self._quarantine_waiting = Gauge(
            "mailmoat_quarantine_full_waiting_messages",
            "Viruses kept spooled until their domain's full quarantine has room.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._filter_seconds = Histogram(
            "mailmoat_filter_duration_seconds",
            "Time to evaluate one message (after enrichment).",
            buckets=SLA_BUCKETS,
            registry=registry,
        )
        self._stage_seconds = Histogram(
            "mailmoat_filter_stage_duration_seconds",
            "Time of each filtering step: enrich (DNS block lists), evaluate (the pipeline).",
            ["stage"],
            buckets=SLA_BUCKETS,
            registry=registry,
        )
        self._end_to_end_seconds = Histogram(
            "mailmoat_end_to_end_duration_seconds",
            "Time from receiving a message to delivering it.",
            buckets=SLA_BUCKETS,
            registry=registry,
        )
        self._dns_seconds = Histogram(
            "mailmoat_dns_lookup_duration_seconds",
            "DNS block-list lookup time.",
            ["zone"],
            buckets=DNS_BUCKETS,
            registry=registry,
        )
        self._store_seconds = Histogram(
            "mailmoat_store_commit_duration_seconds",
            "Time one store transaction took on its writer thread, commit and fsync included.",
            ["op"],
            buckets=STORE_BUCKETS,
            registry=registry,
        )
        self._sessions = Gauge(
            "mailmoat_smtp_sessions_open",
            "SMTP sessions currently open.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._initialise_series()

    def _initialise_series(self) -> None:
        # Known label sets start at zero so rates and absent() work before the first event.
        for direction in Direction:
            self._received.labels(direction.value)
            self._accepted.labels(direction.value)
            for reason in RejectReason:
                self._rejected.labels(reason.value, direction.value)
            for action in Action:
                for category in Category:
                    self._verdicts.labels(action.label, category.value, direction.value)
        for domain in self._domains:
            for family in (self._delivered, self._deferred, self._bounced, self._expired):
                family.labels(domain)
            for result, why in REASONS_BY_RESULT.items():
                for each in why:
                    self._attempts.labels(domain, result.value, each.value)
        for zone in self._zones:
            self._dns_failures.labels(zone)
            self._dns_seconds.labels(zone)
            for status in LookupStatus:
                self._dns_lookups.labels(zone, status.value)
        for stage in FilterStage:
            self._stage_seconds.labels(stage.value)
        for op in StoreOp:
            self._store_seconds.labels(op.value)
        for category in (Category.SPAM, Category.VIRUS, Category.CONTENT):
            self._releases.labels(category.value)
        for party in Party:
            self._virus_alerts.labels(party.value)
        for skipped in Skipped:
            self._virus_alerts_skipped.labels(skipped.value)

    def _domain(self, domain: str) -> str:
        label = _normalise(domain)
        return label if label in self._domains else FOLDED

    @staticmethod
    def _symbol(symbol: str) -> str:
        """The symbol if the registry (``filters.symbols.SYMBOLS``) has it, else ``FOLDED``."""
        return symbol if symbol in SYMBOLS else FOLDED

    def received(self, direction: Direction = Direction.INBOUND) -> None:
        self._received.labels(direction.value).inc()

    def accepted(self, direction: Direction = Direction.INBOUND) -> None:
        self._accepted.labels(direction.value).inc()

    def rejected(self, reason: RejectReason, direction: Direction = Direction.INBOUND) -> None:
        self._rejected.labels(reason.value, direction.value).inc()

    def verdict(
        self, verdict: Verdict, seconds: float, direction: Direction = Direction.INBOUND
    ) -> None:
        """Count one filtered message: its action, every hit, and the time filtering took."""
        self._verdicts.labels(verdict.action.label, verdict.category.value, direction.value).inc()
        for hit in verdict.hits:
            self._hits.labels(hit.stage.value, self._symbol(hit.symbol)).inc()
        self._filter_seconds.observe(seconds)
        self._stage_seconds.labels(FilterStage.EVALUATE.value).observe(seconds)

    def enriched(self, seconds: float) -> None:
        """Time the I/O step before deciding took (all block-list lookups, concurrently)."""
        self._stage_seconds.labels(FilterStage.ENRICH.value).observe(seconds)

    def attempt(self, domain: str, result: AttemptResult, reason: AttemptReason) -> None:
        """One delivery attempt of any kind; ``delivered`` etc. count the SLA's messages."""
        self._attempts.labels(self._domain(domain), result.value, reason.value).inc()

    def filter_restarted(self) -> None:
        self._filter_restarts.inc()

    def unscanned(self) -> None:
        self._unscanned.inc()

    def delivered(self, domain: str, end_to_end_seconds: float) -> None:
        self._delivered.labels(self._domain(domain)).inc()
        self._end_to_end_seconds.observe(end_to_end_seconds)

    def deferred(self, domain: str, reason: AttemptReason) -> None:
        self._deferred.labels(self._domain(domain)).inc()
        self.attempt(domain, AttemptResult.DEFERRED, reason)

    def bounced(self, domain: str, reason: AttemptReason) -> None:
        self._bounced.labels(self._domain(domain)).inc()
        self.attempt(domain, AttemptResult.BOUNCED, reason)

    def expired(self, domain: str) -> None:
        self._expired.labels(self._domain(domain)).inc()
        self.attempt(domain, AttemptResult.EXPIRED, AttemptReason.MAX_AGE)

    def store_commit(self, op: str, seconds: float) -> None:
        """One store transaction's time (``StoreWriter.timed``); unknown ops fold."""
        label = op if op in {o.value for o in StoreOp} else FOLDED
        self._store_seconds.labels(label).observe(seconds)

    def released(self, category: str) -> None:
        label = category if category in {c.value for c in Category} else FOLDED
        self._releases.labels(label).inc()

    def virus_alert(self, party: Party) -> None:
        self._virus_alerts.labels(party.value).inc()

    def virus_alert_skipped(self, reason: Skipped) -> None:
        self._virus_alerts_skipped.labels(reason.value).inc()

    def quarantine_full(self) -> None:
        self._quarantine_full.inc()

    def quarantine_waiting(self, messages: int) -> None:
        self._quarantine_waiting.set(messages)

    def dns_lookup(self, zone: str, seconds: float, status: LookupStatus) -> None:
        label = _normalise(zone)
        label = label if label in self._zones else FOLDED
        self._dns_seconds.labels(label).observe(seconds)
        self._dns_lookups.labels(label, status.value).inc()
        if status in (LookupStatus.TIMEOUT, LookupStatus.ERROR):
            self._dns_failures.labels(label).inc()

    def add_live(self, collector: Collector) -> None:
        """Register a collector that reads live state; multiprocess scrapes add it once."""
        self.registry.register(collector)
        self.live.append(collector)

    def session_opened(self) -> None:
        self._sessions.inc()

    def session_closed(self) -> None:
        self._sessions.dec()


def exposition_registry(
    registry: CollectorRegistry, metrics: GatewayMetrics | None
) -> CollectorRegistry:
    """The registry one scrape serialises: ``registry`` itself, or a merged multiprocess view.

    In multiprocess mode ``registry``'s own values are this worker's share only,
    so a fresh registry merges every worker's files and adds the live queue
    collector once (see the module docstring).
    """
    path = multiprocess_dir()
    if path is None:
        return registry
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path)  # type: ignore[no-untyped-call]
    if metrics is not None:
        for collector in metrics.live:
            merged.register(collector)
    return merged
