"""The gateway process: store, filter, delivery queue, SMTP and HTTP, started and stopped in order.

Start-up takes back this node's leased work before it listens: pending
deliveries are queued, and messages spooled but not filtered (a crash after
250) are streamed into the filter as the backlog limits allow, so nothing
accepted is lost and a large spool neither delays listening nor fills
memory. While it runs, the node keeps its leases and takes over work of
nodes that died (``service/takeover.py``). Shutdown runs the other way: stop
accepting, let open sessions finish (bounded), then stop filtering and
delivery and release what is unfinished to the other nodes (or to the next
start).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping

import dns.asyncresolver
import uvicorn
from aiosmtpd.smtp import SMTP
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Connection

from loadtest import relaytest_api
from quarantine import api, content_api, pages
from quarantine.auth import bearer_principal
from quarantine.held import HeldMessage
from quarantine.service import Quarantine
from quarantine.upkeep import Upkeep
from quarantine.web.router import create_router as customer_pages
from service import recovery, sla_hooks, submission
from service.classifier import Classifier, PolicySource
from service.config import DomainConfig, GatewayConfig
from service.dynamic_lists import DynamicLists
from service.http import create_app
from service.learning import Learner
from service.metrics import GatewayMetrics
from service.notices import alert_mail
from service.outbound import DeliveryQueue
from service.policy_metrics import PolicyStatus
from service.processor import Processor
from service.readiness import readiness_checks
from service.routing import Router, RoutingError
from service.smtp import Gatekeeper, server_factory, tls_context
from service.snapshots import Prefetched
from service.store_metrics import StoreGauges
from service.takeover import Takeover
from slamonitor import api as sla_api
from slamonitor import usage
from slamonitor.availability import AvailabilityProbe
from slamonitor.live import SlaCollector
from slamonitor.mailer import ReportMailer
from slamonitor.outbreaks import OutbreakWatch
from slamonitor.probe import NoServer, Servers
from slamonitor.queues import QueueWatch
from store.leases import Job, Lease, node_name
from store.records import DeliveryKind
from store.store import Store
from store.writer import StoreWriter

log = logging.getLogger("mailmoat.gateway")

DRAIN_SECONDS = 30.0


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop: the gateway, not uvicorn, owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def link_secret(config: GatewayConfig) -> bytes:
    """The digest-link key: from config, else generated once beside the store (mode 0600)."""
    if config.quarantine.link_secret:
        return config.quarantine.link_secret.encode()
    path = config.store.path.parent / "link-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def probe_servers(router: Router) -> Servers:
    """The receiving servers the queue watch probes for an MX-routed domain: where delivery
    would go. No route (no such domain, a null MX, a failed lookup) is the customer's DNS."""

    async def servers(domain: str) -> list[tuple[str, int]]:
        try:
            return [(r.host, r.port) for r in await router.routes(domain)]
        except RoutingError as exc:
            raise NoServer(str(exc)) from exc

    return servers


class Gateway:
    """One gateway worker. ``await start()``, then ``await stop()``."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        worker: int = 0,
        workers: int = 1,
        registry: CollectorRegistry | None = None,
        resolver: dns.asyncresolver.Resolver | None = None,
        clock: Callable[[], float] = time.time,
        serve_http: bool = True,
    ) -> None:
        self.config = config
        self.worker = worker
        self.workers = workers
        self.registry = registry or CollectorRegistry()
        self.resolver = resolver
        self.clock = clock
        self.serve_http = serve_http
        self.sessions: set[SMTP] = set()
        self.smtp_port = 0
        self.submission_port = 0
        self.submission: asyncio.Server | None = None
        self.http_port = 0
        self._stopped = False

    async def start(self) -> None:
        config = self.config
        lease = Lease(node_name(self.worker, config.store.node), config.store.lease_seconds)
        self.store = Store(config.store.location, lease=lease)
        self.writer = StoreWriter(self.store)
        self.writer.start()
        source = PolicySource(config.filter.policy, config.filter.model)
        self.classifier = Classifier(
            source,
            config.filter.processes,
            hard_timeout=config.filter.hard_timeout,
            on_restart=lambda: self.metrics.filter_restarted(),
        )
        await self.classifier.pool.start()
        self.learner = self._learner(source)
        # One worker knows its queue in memory; several (or several nodes) share only the store.
        shared = self.workers > 1 or self.store.concurrent_writers
        queue_lengths: Callable[[], Mapping[str, int]] = (
            self.store.queue_lengths if shared else lambda: self.outbound.lengths()
        )
        self.metrics = GatewayMetrics(
            registry=self.registry,
            domains=sorted(config.domains),
            zones=[z.zone for z in self.classifier.config.dnsbl],
            queue_lengths=queue_lengths,
        )
        self.writer.timed = self.metrics.store_commit
        self.outbound = DeliveryQueue(
            self.writer,
            Router(config.routes(), self.resolver, mx_port=config.delivery.mx_port),
            self.metrics,
            config.delivery,
            hostname=config.smtp.hostname,
            clock=self.clock,
        )
        self.lists = DynamicLists(self.store)
        self.quarantine = Quarantine(
            writer=self.writer,
            outbound=self.outbound,
            clock=self.clock,
            on_release=self._released,
            on_lists_changed=self.lists.invalidate,
        )
        self.sla_gauges = Prefetched(SlaCollector(self.store.engine, self.clock, config.sla))
        self.metrics.add_live(self.sla_gauges)
        self.metrics.add_live(PolicyStatus(source, self.classifier.config, self.clock))
        self.metrics.add_live(
            StoreGauges(
                self.store.engine,
                config.domains,
                quota_per_domain=config.quarantine.quota_per_domain,
                clock=self.clock,
            )
        )
        self.upkeep = Upkeep(
            self.quarantine,
            config.quarantine,
            secret=link_secret(config),
            base_url=config.quarantine.public_url
            or f"http://{config.http.host}:{config.http.port}",
            hostname=config.smtp.hostname,
            clock=self.clock,
        )
        self.processor = Processor(
            self.classifier,
            self.writer,
            self.outbound,
            self.metrics,
            concurrency=config.filter.concurrency,
            clock=self.clock,
            quarantine_quota=config.quarantine.quota_per_domain,
            notices=self.upkeep.notices,
            lists=self.lists,
            max_attempts=config.filter.max_attempts,
            retry_delay=config.filter.retry_delay,
            max_backlog_messages=config.filter.backlog_messages,
            max_backlog_bytes=config.filter.backlog_bytes,
            full_retry=config.filter.quarantine_full_retry,
            alert_settings=lambda domain: config.domains.get(domain, DomainConfig()).alerts,
            hostname=config.smtp.hostname,
        )
        self.takeover = Takeover(
            self.writer,
            filter_message=self.processor.submit,
            adopt=self._adopt,
            queue_deliveries=self.outbound.add,
            backlog=self.processor.queue.qsize,
            clock=self.clock,
        )
        # Renewed once now, not a third of a lease from now: until the first renewal no
        # lease counts as fresh, and every delivery would check its row in the store.
        await self.takeover.renew()
        await self.takeover.claim(own=True)  # a crash after 250 left these; nothing is lost
        self.outbound.start()
        self._lease_task = asyncio.create_task(self.takeover.run(), name="mailmoat-leases")
        self._upkeep_task = asyncio.create_task(self.upkeep.run(), name="mailmoat-upkeep")
        self._sla_refresh = asyncio.create_task(self.sla_gauges.run(), name="mailmoat-sla-gauges")
        self._pool_watch = asyncio.create_task(
            self.classifier.pool.watch(), name="mailmoat-filter-watch"
        )

        handler = Gatekeeper(
            domains=frozenset(config.domains),
            config=config.smtp,
            writer=self.writer,
            submit=self.processor.submit,
            has_room=self.processor.has_room,
            metrics=self.metrics,
            worker=self.worker,
            clock=self.clock,
        )
        factory = server_factory(
            handler, config.smtp, self.metrics, self.sessions, tls_context(config.smtp)
        )
        loop = asyncio.get_running_loop()
        self.smtp = await loop.create_server(
            factory, config.smtp.host, config.smtp.port, reuse_port=self.workers > 1
        )
        self.smtp_port = self.smtp.sockets[0].getsockname()[1]
        if config.submission.enabled:
            self.submission = await submission.listen(
                config, store=self.store, writer=self.writer, submit=self.processor.submit,
                has_room=self.processor.has_room, metrics=self.metrics, sessions=self.sessions,
                worker=self.worker, clock=self.clock, reuse_port=self.workers > 1,
            )  # fmt: skip
            self.submission_port = self.submission.sockets[0].getsockname()[1]
        self._watchers: list[asyncio.Task[None]] = []
        if self.learner is not None:  # every worker: each swaps the model its filters use
            self._watchers.append(asyncio.create_task(self.learner.run(), name="mailmoat-learn"))
        if self.worker == 0:  # one watcher for the whole gateway, whatever --workers says
            self._start_watchers(queue_lengths)
        self.http: _EmbeddedServer | None = None
        if self.serve_http:
            await self._start_http()
        log.info(
            "gateway listening",
            extra={
                "smtp": self.smtp_port,
                "submission": self.submission_port or None,
                "http": self.http_port,
                "worker": self.worker,
            },
        )

    def _learner(self, source: PolicySource) -> Learner | None:
        """Online learning from releases and confirmed misses, when on and a model is in use."""
        path = source.model or self.classifier.config.model
        if not self.config.learning.enabled or path is None:
            return None
        return Learner(self.store, path, self.config.learning, self.classifier.use_model)

    def _released(
        self, conn: Connection, message: HeldMessage, by: str, now: float, at: float | None
    ) -> None:
        sla_hooks.record_release(conn, message, by, now, at)
        self.metrics.released(message.summary.category)

    def _start_watchers(self, queue_lengths: Callable[[], Mapping[str, int]]) -> None:
        """Queue alerts (SPEC 5), the port-25 availability probe (SPEC 4), report mail,
        outbreak notices."""
        watch = QueueWatch(
            self.writer.write, queue_lengths, self.config.routes(), self._notify_customer,
            clock=self.clock, own_hostname=self.config.smtp.hostname,
            servers=probe_servers(self.outbound.router),
            holds=lambda: self._holds(Job.QUEUE_WATCH),
        )  # fmt: skip
        host = "127.0.0.1" if self.config.smtp.host in ("0.0.0.0", "") else self.config.smtp.host
        probe = AvailabilityProbe(
            self.writer.write, host, self.smtp_port, clock=self.clock,
            holds=lambda: self._holds(Job.AVAILABILITY),
        )  # fmt: skip
        contacts = {d: c.contact for d, c in self.config.domains.items() if c.contact}
        mailer = ReportMailer(
            self.store.engine, self.config.sla, contacts, self._mail, clock=self.clock
        )
        self._watchers += [  # beside the learner's, so stop() cancels every one
            asyncio.create_task(watch.run(), name="mailmoat-queue-watch"),
            asyncio.create_task(probe.run(), name="mailmoat-availability"),
            asyncio.create_task(mailer.run(), name="mailmoat-report-mailer"),
            asyncio.create_task(
                OutbreakWatch(
                    self.writer.write,
                    contacts,
                    self._mail,
                    clock=self.clock,
                    holds=lambda: self._holds(Job.OUTBREAKS),
                ).run(),
                name="mailmoat-outbreak-watch",
            ),
            asyncio.create_task(
                usage.track(self.store.engine, self.config.sla.timezone), name="mailmoat-usage"
            ),
        ]

    async def _holds(self, job: Job) -> bool:
        """Whether this node runs ``job`` now: of several nodes, the one holding its lease."""
        return await self.writer.call(self.store.hold_job, job, self.clock())

    async def _notify_customer(self, domain: str, subject: str, body: str) -> None:
        """Mail a domain's contact through our own delivery path."""
        contact = self.config.domains.get(domain, DomainConfig()).contact
        if contact is None:
            log.warning("no contact for %s; alert not mailed: %s", domain, subject)
            return
        await self._mail(contact, subject, body)

    async def _mail(self, to: str, subject: str, body: str) -> None:
        raw = alert_mail(sender=f"postmaster@{self.config.smtp.hostname}", to=to,
                         subject=subject, body=body, now=self.clock())  # fmt: skip
        created = await self.writer.call(
            self.store.submit, raw, [to], self.clock(), DeliveryKind.ALERT
        )
        self.outbound.add(created)

    def _adopt(self, backlog: list[tuple[str, int]]) -> None:
        """Stream this node's own unfiltered messages into the filter (start-up recovery)."""
        processor = self.processor
        self._recovery = asyncio.create_task(
            recovery.stream(self.writer, backlog, processor.has_room, processor.submit),
            name="mailmoat-recovery",
        )

    async def _start_http(self) -> None:
        principal = bearer_principal(self.quarantine)
        app = create_app(
            metrics=self.metrics,
            registry=self.registry,
            readiness=readiness_checks(self.smtp.is_serving, self.writer, self.classifier.pool),
            auth=self.config.http.metrics_auth,
            routers=[
                api.create_router(self.quarantine, principal),
                content_api.create_router(
                    self.quarantine, principal, self.config.quarantine.customer_rules
                ),
                pages.create_router(self.upkeep),
                customer_pages(
                    self.quarantine,
                    secret=self.upkeep.secret,
                    clock=self.clock,
                    base_url=lambda: self.upkeep.base_url,
                    hostname=self.config.smtp.hostname,
                ),
                sla_api.create_router(
                    self.store.engine,
                    principal,
                    write=self.writer.write,
                    clock=self.clock,
                    settings=self.config.sla,
                ),
                relaytest_api.create_router(
                    principal,
                    self.config.routes(),
                    settings=self.config.relaytest,
                    helo=self.config.smtp.hostname,
                ),
            ],
        )
        server_config = uvicorn.Config(
            app,
            host=self.config.http.host,
            port=self.config.http.port,
            log_config=None,
            lifespan="off",
            access_log=False,
        )
        self.http = _EmbeddedServer(server_config)
        self._http_task = asyncio.create_task(self.http.serve(), name="mailmoat-http")
        while not self.http.started:
            if self._http_task.done():
                self._http_task.result()  # raises the bind error, if any
            await asyncio.sleep(0.01)
        self.http_port = self.http.servers[0].sockets[0].getsockname()[1]
        if self.config.quarantine.public_url is None:  # links must name the port really bound
            self.upkeep.base_url = f"http://{self.config.http.host}:{self.http_port}"

    async def stop(self) -> None:
        """Graceful: stop accepting, drain sessions (bounded), stop the rest in order; once."""
        if self._stopped:
            return
        self._stopped = True
        self.smtp.close()
        if self.submission is not None:
            self.submission.close()
        deadline = time.monotonic() + DRAIN_SECONDS
        while self.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.close()
        await self.smtp.wait_closed()
        if self.submission is not None:
            await self.submission.wait_closed()
        if self.http is not None:
            self.http.should_exit = True
            await self._http_task
        tasks = (
            self._upkeep_task, self._lease_task, self._pool_watch, self._recovery,
            self._sla_refresh, *self._watchers,
        )  # fmt: skip
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.processor.close()
        await self.outbound.close()
        await self.takeover.release()
        await self.writer.close()
        self.classifier.close()
        self.store.close()
