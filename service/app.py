"""The gateway process: store, filter, delivery queue, SMTP and HTTP, started and stopped in order.

Start-up recovers before it listens: messages spooled but not filtered
(a crash after 250) are filtered again and pending deliveries are queued,
so nothing accepted is lost. While it runs, the node keeps its leases and
takes over work of nodes that died (``service/takeover.py``). Shutdown runs
the other way: stop accepting, let open sessions finish (bounded), then stop
filtering and delivery and release what is unfinished to the other nodes
(or to the next start).
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

from quarantine import api, pages
from quarantine.auth import bearer_principal
from quarantine.service import Quarantine
from quarantine.upkeep import Upkeep
from service import sla_hooks
from service.classifier import Classifier, PolicySource
from service.config import DomainConfig, GatewayConfig
from service.dynamic_lists import DynamicLists
from service.http import create_app
from service.metrics import GatewayMetrics
from service.notices import alert_mail
from service.outbound import DeliveryQueue
from service.processor import Processor
from service.routing import Router
from service.smtp import Gatekeeper, server_factory, tls_context
from service.takeover import Takeover
from slamonitor import api as sla_api
from slamonitor.availability import AvailabilityProbe
from slamonitor.live import SlaCollector
from slamonitor.queues import QueueWatch
from store.leases import Lease, node_name
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
        self.http_port = 0

    async def start(self) -> None:
        config = self.config
        lease = Lease(node_name(self.worker, config.store.node), config.store.lease_seconds)
        self.store = Store(config.store.location, lease=lease)
        self.writer = StoreWriter(self.store)
        self.writer.start()
        source = PolicySource(config.filter.policy, config.filter.model)
        self.classifier = Classifier(source, config.filter.processes)
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
        self.outbound = DeliveryQueue(
            self.writer,
            Router(config.routes(), self.resolver),
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
            on_release=sla_hooks.record_release,
            on_lists_changed=self.lists.invalidate,
        )
        self.metrics.add_live(SlaCollector(self.store.engine, self.clock))
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
        )
        self.takeover = Takeover(
            self.writer,
            filter_message=self.processor.submit,
            queue_deliveries=self.outbound.add,
            backlog=self.processor.queue.qsize,
            clock=self.clock,
        )
        await self.takeover.claim(own=True)  # a crash after 250 left these; nothing is lost
        self.outbound.start()
        self._lease_task = asyncio.create_task(self.takeover.run(), name="mailmoat-leases")
        self._upkeep_task = asyncio.create_task(self.upkeep.run(), name="mailmoat-upkeep")

        handler = Gatekeeper(
            domains=frozenset(config.domains),
            config=config.smtp,
            writer=self.writer,
            submit=self.processor.submit,
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
        self._watchers: list[asyncio.Task[None]] = []
        if self.worker == 0:  # one watcher for the whole gateway, whatever --workers says
            self._start_watchers(queue_lengths)
        self.http: _EmbeddedServer | None = None
        if self.serve_http:
            await self._start_http()
        log.info(
            "gateway listening",
            extra={"smtp": self.smtp_port, "http": self.http_port, "worker": self.worker},
        )

    def _start_watchers(self, queue_lengths: Callable[[], Mapping[str, int]]) -> None:
        """Queue alerts (SPEC 5) and the port-25 availability probe (SPEC 4)."""
        watch = QueueWatch(
            self.writer.write, queue_lengths, self.config.routes(), self._notify_customer,
            clock=self.clock,
        )  # fmt: skip
        host = "127.0.0.1" if self.config.smtp.host in ("0.0.0.0", "") else self.config.smtp.host
        probe = AvailabilityProbe(self.writer.write, host, self.smtp_port, clock=self.clock)
        self._watchers = [
            asyncio.create_task(watch.run(), name="mailmoat-queue-watch"),
            asyncio.create_task(probe.run(), name="mailmoat-availability"),
        ]

    async def _notify_customer(self, domain: str, subject: str, body: str) -> None:
        """Mail a domain's contact through our own delivery path."""
        contact = self.config.domains.get(domain, DomainConfig()).contact
        if contact is None:
            log.warning("no contact for %s; alert not mailed: %s", domain, subject)
            return
        raw = alert_mail(sender=f"postmaster@{self.config.smtp.hostname}", to=contact,
                         subject=subject, body=body, now=self.clock())  # fmt: skip
        created = await self.writer.call(
            self.store.submit, raw, [contact], self.clock(), DeliveryKind.ALERT
        )
        self.outbound.add(created)

    async def _start_http(self) -> None:
        principal = bearer_principal(self.quarantine)
        app = create_app(
            metrics=self.metrics,
            registry=self.registry,
            readiness={"smtp": self.smtp.is_serving, "store": self.store.writable},
            auth=self.config.http.metrics_auth,
            routers=[
                api.create_router(self.quarantine, principal),
                pages.create_router(self.upkeep),
                sla_api.create_router(
                    self.store.engine, principal, write=self.writer.write, clock=self.clock
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
        """Graceful: stop accepting, drain sessions (bounded), stop the rest in order."""
        self.smtp.close()
        deadline = time.monotonic() + DRAIN_SECONDS
        while self.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.close()
        await self.smtp.wait_closed()
        if self.http is not None:
            self.http.should_exit = True
            await self._http_task
        for task in (self._upkeep_task, self._lease_task, *self._watchers):
            task.cancel()
        await asyncio.gather(
            self._upkeep_task, self._lease_task, *self._watchers, return_exceptions=True
        )
        await self.processor.close()
        await self.outbound.close()
        await self.takeover.release()
        await self.writer.close()
        self.classifier.close()
        self.store.close()
