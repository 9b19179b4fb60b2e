"""Queue alerts (SPEC 5): a domain's queue keeps rising, so test its server and tell the customer.

The rising rule: the last ``samples`` lengths of a domain strictly increase
and the newest is above ``floor``. A short burst does not qualify (it stops
growing); a small queue does not either (the floor), so a customer is never
told about a few messages in flight. When the rule first holds, the
receiving server is probed (connect, EHLO, QUIT): the configured route, else
the domain's MX hosts in order (``servers``), the first to answer passing;
a domain whose DNS names no server fails with cause ``dns``. A failed probe fires
``receiving_server_down`` and notifies the customer once; it is probed again
at every sample until it answers, which resolves the alert. Everything is
recorded in ``sla_queue_samples``, ``sla_probes`` and ``sla_alerts``. A
failure on the customer's side also proposes a ``customer_fault`` exclusion
window (see ``faults``) that lasts until the server answers again.

With several gateway nodes one watch runs: the node holding its lease
(``holds``). A node that takes the watch over (or restarts) picks up where
the store says the last holder stood (the newest state of each alert, the
recent samples), so a customer told once is not told again by the next node.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection

from slamonitor import faults
from slamonitor.probe import (
    Cause,
    Clock,
    Holds,
    NoServer,
    ProbeResult,
    Servers,
    Sleep,
    always,
    sleep,
    smtp_probe,
)
from store.sla_tables import alerts, probes, queue_samples
from store.writer import Write

log = logging.getLogger("mailmoat.sla.queues")

Notify = Callable[[str, str, str], Awaitable[None]]
QUEUE_RISING = "queue_rising"
SERVER_DOWN = "receiving_server_down"


@dataclass(frozen=True, slots=True)
class RisingRule:
    samples: int = 5
    floor: int = 10

    def holds(self, lengths: deque[int]) -> bool:
        recent = list(lengths)[-self.samples :]
        if len(recent) < self.samples or recent[-1] <= self.floor:
            return False
        return all(a < b for a, b in itertools.pairwise(recent))


class QueueWatch:
    """Samples queue lengths every ``interval`` seconds; ``routes`` maps domain to (host, port)."""

    def __init__(
        self,
        write: Write,
        lengths: Callable[[], Mapping[str, int]],
        routes: Mapping[str, tuple[str, int]],
        notify: Notify,
        *,
        clock: Clock,
        sleeper: Sleep = sleep,
        interval: float = 30.0,
        rule: RisingRule | None = None,
        probe_timeout: float = 10.0,
        own_hostname: str | None = None,
        servers: Servers | None = None,
        holds: Holds = always,
    ) -> None:
        self.write = write
        self.holds = holds
        self.lengths = lengths
        self.routes = dict(routes)
        self.notify = notify
        self.clock = clock
        self.sleep = sleeper
        self.interval = interval
        self.rule = rule or RisingRule()
        self.probe_timeout = probe_timeout
        self.own_hostname = own_hostname
        self.servers = servers
        self._faults: dict[str, int] = {}
        """domain -> id of the proposed customer_fault window still open."""
        self._history: dict[str, deque[int]] = {}
        self.firing: dict[tuple[str, str], bool] = {}
        """(alert, domain) -> firing, for gauges in this process."""
        self._holding = False
        """Whether this node ran the previous round (else the store says where things stand)."""

    async def _write(self, table: Table, rows: list[dict[str, object]]) -> None:
        if rows:
            await self.write(lambda conn: conn.execute(table.insert(), rows))

    async def _alert(self, alert: str, domain: str, firing: bool, detail: str, at: float) -> None:
        previous = self.firing.get((alert, domain), False)
        self.firing[(alert, domain)] = firing
        if previous == firing:
            return  # only changes are recorded and logged
        state = "firing" if firing else "resolved"
        log.warning("%s %s for %s: %s", alert, state, domain, detail)
        row = {"at": at, "alert": alert, "domain": domain, "state": state, "detail": detail}
        await self._write(alerts, [row])

    async def _probe(self, domain: str, at: float) -> ProbeResult:
        route = self.routes.get(domain)
        if route is not None:
            result = await self._smtp(*route)
        elif self.servers is None:
            result = ProbeResult(False, f"no receiving server configured for {domain}")
        else:
            result = await self._probe_mx(domain)
        row = {"at": at, "domain": domain, "ok": result.ok, "detail": result.detail}
        await self._write(probes, [row])
        return result

    async def _smtp(self, host: str, port: int) -> ProbeResult:
        return await smtp_probe(
            host, port, timeout=self.probe_timeout, own_hostname=self.own_hostname
        )

    async def _probe_mx(self, domain: str) -> ProbeResult:
        """The domain's MX hosts in order, as delivery tries them: the first that answers
        passes; when none does, the first one's failure says why."""
        assert self.servers is not None
        try:
            hosts = await self.servers(domain)
        except NoServer as exc:
            return ProbeResult(False, f"{domain}: {exc}", Cause.DNS)
        failures = []
        for host, port in hosts:
            result = await self._smtp(host, port)
            if result.ok:
                return result
            failures.append(result)
        if not failures:
            return ProbeResult(False, f"{domain}: DNS names no mail server", Cause.DNS)
        first = failures[0]
        return ProbeResult(False, "; ".join(f.detail for f in failures)[:900], first.cause)

    async def sample_once(self) -> None:
        """Take one sample of every domain and act on the rising rule."""
        at = self.clock()
        lengths = {d.lower(): int(n) for d, n in self.lengths().items()}
        for domain in self._history.keys() - lengths.keys():
            lengths[domain] = 0  # an empty queue drops out of the map
        rows = [{"at": at, "domain": d, "length": n} for d, n in sorted(lengths.items())]
        await self._write(queue_samples, rows)
        for domain, length in sorted(lengths.items()):
            history = self._history.setdefault(domain, deque(maxlen=self.rule.samples))
            history.append(length)
            rising = self.rule.holds(history)
            was_rising = self.firing.get((QUEUE_RISING, domain), False)
            down = self.firing.get((SERVER_DOWN, domain), False)
            detail = (
                f"queue {list(history)} (rule: {self.rule.samples} rising samples"
                f" above {self.rule.floor})"
            )
            await self._alert(QUEUE_RISING, domain, rising, detail, at)
            if (rising and not was_rising) or down:
                await self._check_server(domain, length, at, down)

    async def _check_server(self, domain: str, length: int, at: float, down: bool) -> None:
        result = await self._probe(domain, at)
        await self._alert(SERVER_DOWN, domain, not result.ok, result.detail, at)
        await self._track_fault(domain, at, result)
        if not result.ok and not down:
            when = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
            subject = f"Mail for {domain} is queuing: your mail server does not accept it"
            body = (
                f"At {when} UTC, {length} messages for {domain} were waiting at Mailmoat and the "
                f"queue was growing.\nWe tested your receiving server: {result.detail}\n"
                "Mail is kept and retried for up to 7 days; please check that server.\n"
            )
            await self.notify(domain, subject, body)

    async def _track_fault(self, domain: str, at: float, result: ProbeResult) -> None:
        """Open, stretch or close the domain's proposed customer-fault window."""
        open_id = self._faults.get(domain)
        if open_id is None and not faults.is_customer_side(result):
            return

        def transaction(conn: Connection) -> int:
            window = open_id
            if window is None:
                # A restarted watch probes again after ``samples`` rising samples.
                since = at - (self.rule.samples + 1) * self.interval
                window = faults.still_open(conn, domain, since)
            if window is None:
                return faults.propose(conn, domain, at, result)
            faults.stretch(conn, window, at)
            return window

        self._faults[domain] = await self.write(transaction)
        if not faults.is_customer_side(result):
            del self._faults[domain]

    async def round(self) -> bool:
        """One interval: sample when this node holds the watch's lease; True when it did.

        With several nodes one samples and alerts; another takes over once the
        holder stops renewing, starting from the holder's alerts and samples.
        """
        if not await self.holds():
            self._holding = False
            return False
        if not self._holding:
            await self._resume()
            self._holding = True
        await self.sample_once()
        return True

    async def _resume(self) -> None:
        """Take the alert states and recent samples the previous holder left in the store."""
        since = self.clock() - (self.rule.samples + 1) * self.interval

        def read(conn: Connection) -> tuple[list[tuple[str, str, str]], list[tuple[str, int]]]:
            newest = select(func.max(alerts.c.id)).group_by(alerts.c.alert, alerts.c.domain)
            states = conn.execute(
                select(alerts.c.alert, alerts.c.domain, alerts.c.state).where(
                    alerts.c.id.in_(newest.scalar_subquery())
                )
            ).all()
            samples = conn.execute(
                select(queue_samples.c.domain, queue_samples.c.length)
                .where(queue_samples.c.at >= since)
                .order_by(queue_samples.c.at, queue_samples.c.id)
            ).all()
            return [tuple(s) for s in states], [tuple(s) for s in samples]

        states, samples = await self.write(read)
        self.firing = {(alert, domain): state == "firing" for alert, domain, state in states}
        self._history = {}
        for domain, length in samples:
            self._history.setdefault(domain, deque(maxlen=self.rule.samples)).append(length)

    async def run(self) -> None:
        """Run a round every ``interval`` until cancelled; a failed one is logged, the
        watch goes on."""
        while True:
            try:
                await self.round()
            except Exception:
                log.exception("queue sample failed; next one in %.0f s", self.interval)
            await self.sleep(self.interval)
