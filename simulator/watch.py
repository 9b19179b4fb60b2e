"""What the gateway's watchers would have recorded: port probes, queue samples, queue alerts.

The availability probe runs every minute (up unless port 25 is closed); the
queue watch samples each domain every minute and applies the monitor's own
``RisingRule`` (its samples and floor), probing the receiving server when
the rule first holds and while it is down, as ``slamonitor.queues`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulator.engine import Run
from simulator.mix import DELIVERED, EXPIRED, REDIRECTED
from simulator.scenario import ConfigFault, DownstreamOutage, GatewayOutage, Maintenance
from slamonitor.queues import QUEUE_RISING, SERVER_DOWN, RisingRule

INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class Watch:
    """Sample times, port state, queue lengths per domain and alert transitions."""

    at: NDArray[np.float64]
    up: NDArray[np.bool_]
    queues: NDArray[np.int64]
    alerts: list[tuple[float, str, str, str, str]]
    """(at, alert, domain, firing | resolved, detail) in time order."""
    firing: dict[tuple[str, str], NDArray[np.bool_]]
    """Per (alert, domain): the alert's state at each sample, for the metrics."""


def closed(run: Run, at: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Samples taken while port 25 was closed."""
    s = run.scenario
    down = np.zeros(len(at), dtype=np.bool_)
    for e in s.events:
        if isinstance(e, GatewayOutage) or (isinstance(e, Maintenance) and e.port_closed):
            lo = s.local(e.start)
            down |= (at >= lo) & (at < lo + e.seconds)
    return down


def _lengths(run: Run, at: NDArray[np.float64]) -> NDArray[np.int64]:
    goes = np.isin(run.outcome, (DELIVERED, REDIRECTED, EXPIRED))
    out = np.zeros((len(run.domains), len(at)), dtype=np.int64)
    for d in range(len(run.domains)):
        mine = goes & (run.arrivals.domain == d)
        queued = np.sort(run.filtered[mine])
        left = np.sort(run.finished[mine])
        out[d] = np.searchsorted(queued, at, side="right") - np.searchsorted(left, at, side="right")
    return out


def _rising(lengths: NDArray[np.int64], rule: RisingRule) -> NDArray[np.bool_]:
    up = np.zeros(len(lengths), dtype=np.bool_)
    if len(lengths) < rule.samples:
        return up
    steps = np.diff(lengths) > 0
    run = np.ones(len(lengths) - rule.samples + 1, dtype=np.bool_)
    for j in range(rule.samples - 1):
        run &= steps[j : j + len(run)]
    up[rule.samples - 1 :] = run
    return up & (lengths > rule.floor)


def _server_down(run: Run, domain: str, at: NDArray[np.float64]) -> NDArray[np.bool_]:
    s = run.scenario
    down = np.zeros(len(at), dtype=np.bool_)
    for e in s.events:
        if isinstance(e, DownstreamOutage | ConfigFault) and e.domain == domain:
            lo = s.local(e.start)
            down |= (at >= lo) & (at < lo + e.seconds)
    return down


def watch(run: Run, rule: RisingRule | None = None) -> Watch:
    rule = rule or RisingRule()
    at = np.arange(run.start, run.end, INTERVAL)
    lengths = _lengths(run, at)
    alerts: list[tuple[float, str, str, str, str]] = []
    firing: dict[tuple[str, str], NDArray[np.bool_]] = {}
    for d, domain in enumerate(run.domains):
        rising = _rising(lengths[d], rule)
        refuses = _server_down(run, domain, at)
        # Probed when the rule first holds, then at every sample until the server answers.
        down = np.zeros(len(at), dtype=np.bool_)
        if rising.any():
            state = False
            for k in range(len(at)):
                if state or (rising[k] and (k == 0 or not rising[k - 1])):
                    state = bool(refuses[k])
                down[k] = state
        for name, series in ((QUEUE_RISING, rising), (SERVER_DOWN, down)):
            if series.any():
                firing[(name, domain)] = series
            changes = np.flatnonzero(np.diff(np.concatenate(([False], series))))
            for k in changes.tolist():
                state_name = "firing" if series[k] else "resolved"
                detail = f"queue {int(lengths[d][k])} (rule: {rule.samples} rising samples)"
                alerts.append((float(at[k]), name, domain, state_name, detail))
    alerts.sort()
    return Watch(at=at, up=~closed(run, at), queues=lengths, alerts=alerts, firing=firing)
