"""Policy and model reload status for /metrics: do the files on disk load, and since when.

Filter workers reload the policy, model and signature files when one of them
changes, and keep filtering with the last good policy when the new files do
not load (``service.classifier``). That failure is silent in the mail flow,
so the gateway checks the same files at scrape time: when their stamp
(mtime, size) changed since the last scrape, it loads them once, as a worker
would, and exports whether that worked. The start-up policy counts as good:
the gateway refuses to start on a broken one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from filters.policy import PolicyConfig
from service.classifier import PolicySource, Stamp, stamp_of

log = logging.getLogger(__name__)


class PolicyStatus:
    """A custom collector; ``clock`` is injected so tests can check the timestamps."""

    def __init__(self, source: PolicySource, config: PolicyConfig, clock: Callable[[], float]):
        self.source = source
        self.clock = clock
        self._files = source.files(config)
        self._stamp = self._read_stamp()
        self._loaded_at = clock()
        self._valid = True
        self._failures = 0
        self._lock = threading.Lock()

    def _read_stamp(self) -> Stamp:
        return stamp_of(self._files)

    def check(self) -> None:
        """Load the files once if they changed since the last check; remember the outcome."""
        with self._lock:
            stamp = self._read_stamp()
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                policy = self.source.load()
            except (ValueError, OSError) as exc:
                self._valid = False
                self._failures += 1
                log.error("policy files changed and do not load; workers keep the last: %s", exc)
                return
            self._valid, self._loaded_at = True, self.clock()
            self._files = self.source.files(policy.config)
            self._stamp = self._read_stamp()

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        self.check()
        valid = GaugeMetricFamily(
            "mailmoat_policy_valid",
            "1 when the policy, model and signature files on disk load; 0: workers keep the "
            "last good policy.",
        )
        valid.add_metric([], 1.0 if self._valid else 0.0)
        loaded = GaugeMetricFamily(
            "mailmoat_policy_loaded_timestamp_seconds",
            "When the files in force were loaded (start-up or the last good change).",
        )
        loaded.add_metric([], self._loaded_at)
        failures = CounterMetricFamily(
            "mailmoat_policy_reload_failures", "Changes to the policy files that did not load."
        )
        failures.add_metric([], float(self._failures))
        yield from (valid, loaded, failures)
