"""Availability (SPEC 4): the SMTP port accepting sessions, from a periodic EHLO/QUIT probe.

Each sample stands for one probe interval, so the share of "up" samples is
the share of time the port accepted mail. The probe runs inside the
gateway, so it dies with it: a gap between two samples longer than 1.5
intervals means the gateway itself was down, and each missing interval
counts as a failed sample (``missing`` in the report). Time before the
month's first sample and after its last is not guessed at. Samples inside
windows where no level is measured are left out. Prometheus sees the same
outages from outside (``up`` and the blackbox SMTP probe, deploy/).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from sqlalchemy import Connection, select

from slamonitor.exclusions import LATENCY_ONLY, Window
from slamonitor.periods import Month
from slamonitor.probe import Clock, Holds, Sleep, always, sleep, smtp_probe
from store.sla_tables import availability
from store.writer import Write

log = logging.getLogger("mailmoat.sla.availability")

TARGET = 0.999
PROBE_INTERVAL = 60.0
"""Seconds between probes; a gap longer than 1.5 of these is an outage of the gateway."""
"""The contract names no figure for availability; 99.9% is what operators usually promise."""


@dataclass(frozen=True, slots=True)
class Availability:
    samples: int
    up: int
    excluded: int
    missing: int = 0
    target: float = TARGET

    @property
    def share(self) -> float | None:
        return self.up / self.samples if self.samples else None

    def to_dict(self) -> dict[str, object]:
        share = self.share
        return {
            "target": self.target,
            "measured": share,
            "met": None if share is None else share >= self.target,
            "samples": self.samples,
            "up": self.up,
            "excluded_samples": self.excluded,
            "missing_samples": self.missing,
        }


def measure(
    conn: Connection,
    month: Month,
    domain: str | None,
    found: Sequence[Window],
    interval: float = PROBE_INTERVAL,
) -> Availability:
    """Up share of the month's probe samples outside exclusion windows (``domain``'s or global).

    Intervals missing between two samples (the gateway, and its probe, were down) count as
    failed samples.
    """
    rows = conn.execute(
        select(availability.c.at, availability.c.up)
        .where(availability.c.at >= month.start, availability.c.at < month.end)
        .order_by(availability.c.at)
    ).all()
    samples = [(at, bool(up)) for at, up in rows]
    missing = [
        (before + k * interval, False)
        for (before, _), (after, _) in pairwise(samples)
        if after - before > 1.5 * interval
        for k in range(1, round((after - before) / interval))
    ]
    relevant = [
        w for w in found if w.kind not in LATENCY_ONLY and (w.domain is None or w.domain == domain)
    ]

    def kept(at: float) -> bool:
        return not any(w.start <= at < w.end for w in relevant)

    measured = [up for at, up in samples if kept(at)]
    gaps = sum(1 for at, _ in missing if kept(at))
    excluded = len(samples) + len(missing) - len(measured) - gaps
    return Availability(len(measured) + gaps, sum(measured), excluded, gaps)


class AvailabilityProbe:
    """Probes the gateway's SMTP listener every ``interval`` seconds and records up/down."""

    def __init__(
        self,
        write: Write,
        host: str,
        port: int,
        *,
        clock: Clock,
        interval: float = PROBE_INTERVAL,
        timeout: float = 10.0,
        sleeper: Sleep = sleep,
        holds: Holds = always,
    ) -> None:
        self.write = write
        self.holds = holds
        self.host = host
        self.port = port
        self.clock = clock
        self.interval = interval
        self.timeout = timeout
        self.sleep = sleeper
        self.last_up: bool | None = None

    async def probe_once(self) -> bool:
        result = await smtp_probe(self.host, self.port, timeout=self.timeout)
        at = self.clock()
        row = {"at": at, "up": result.ok, "detail": result.detail}
        await self.write(lambda conn: conn.execute(availability.insert().values(**row)))
        if not result.ok:
            log.warning("SMTP listener probe failed: %s", result.detail)
        self.last_up = result.ok
        return result.ok

    async def round(self) -> bool | None:
        """Probe when this node holds the probe's lease (one sample per interval however
        many nodes run); whether the listener answered, None when another node probes."""
        return await self.probe_once() if await self.holds() else None

    async def run(self) -> None:
        """A round every ``interval`` until cancelled; a failed one is logged, the next tried."""
        while True:
            try:
                await self.round()
            except Exception:
                log.exception("availability probe failed; next one in %.0f s", self.interval)
            await self.sleep(self.interval)
