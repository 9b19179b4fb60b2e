"""Filtering off the event loop: enrich on the loop, evaluate in a worker process.

Parsing and scoring a 20 MB message takes long enough to stall every SMTP
session if it ran on the loop (a known aiosmtpd pain point), so the CPU work
runs in a process pool (``processes = 0`` uses a thread, for tests and tiny
setups), supervised by ``FilterPool``: a dead child is replaced and its work
sent again. DNS lookups are I/O and stay on the loop, where the resolver cache
is shared by every message. Each worker holds its own ``Policy`` and reloads
it when the policy, signature or model files change (checked at most every
few seconds), so a rule change takes effect within seconds, not the 24 h the
contract allows. A model learned online (``service.learning``) goes live with
the next message: a thread worker is handed it, process workers see a higher
``generation`` in their next call and load the freshly written file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from filters.authentication import authenticate, make_lookup
from filters.dnsbl import DnsblClient
from filters.facts import DnsblResult, Facts
from filters.mail import Envelope, Mail
from filters.model import ModelError, TokenModel
from filters.pipeline import evaluate
from filters.policy import PolicyConfig, load_policy
from filters.runtime import Policy
from filters.verdict import Verdict
from service.actions import SUBJECT_CHARS
from service.filterpool import FilterPool

log = logging.getLogger("mailmoat.filter")

RELOAD_CHECK_SECONDS = 5.0


Stamp = tuple[tuple[str, float, int], ...]
"""Each policy file's path, mtime and size: a change means the policy may have changed."""


def stamp_of(paths: Iterable[Path]) -> Stamp:
    """The files' stamps; a missing file stamps as (-1, -1) so its return is a change too."""
    out = []
    for path in paths:
        try:
            st = path.stat()
            out.append((str(path), st.st_mtime, st.st_size))
        except OSError:
            out.append((str(path), -1.0, -1))
    return tuple(out)


@dataclass(frozen=True)
class PolicySource:
    """Where a worker loads its policy from (picklable, sent to each worker process)."""

    policy: Path | None
    model: Path | None

    def load(self) -> Policy:
        config = load_policy(self.policy) if self.policy else PolicyConfig()
        return Policy.from_config(config, model=self.model)

    def files(self, config: PolicyConfig) -> list[Path]:
        """Every file a policy loaded from ``config`` reads; a change to one means reload."""
        paths = [p for p in (self.policy, self.model or config.model) if p is not None]
        paths += config.antivirus.signature_files
        if config.signatures.file is not None:
            paths.append(config.signatures.file)
        return paths


class _Holder:
    """The worker's current policy, reloaded when one of its files changes."""

    def __init__(self, source: PolicySource, policy: Policy | None = None) -> None:
        self.source = source
        self.policy = policy if policy is not None else source.load()
        self.stamp = self._stamp()
        self.checked = time.monotonic()
        self.generation = 0

    def use_model(self, model: TokenModel) -> None:
        """Filter the next message with ``model``; its file is already on disk (no reload)."""
        self.policy = self.policy.with_model(model)
        self.stamp = self._stamp()

    def _stamp(self) -> Stamp:
        return stamp_of(self.source.files(self.policy.config))

    def current(self, generation: int = 0) -> Policy:
        """The policy to filter with; ``generation`` above the last seen means a learned model."""
        if generation > self.generation:
            self.generation = generation
            path = self.source.model or self.policy.config.model
            if path is not None:
                try:
                    self.use_model(TokenModel.load(path))
                except ModelError as exc:  # keep filtering with the model it has
                    log.error("learned model did not load, keeping the previous one: %s", exc)
        now = time.monotonic()
        if now - self.checked >= RELOAD_CHECK_SECONDS:
            self.checked = now
            stamp = self._stamp()
            if stamp != self.stamp:
                self.stamp = stamp
                try:
                    self.policy = self.source.load()
                    log.info("policy reloaded", extra={"files": [s[0] for s in stamp]})
                except (ValueError, OSError) as exc:  # keep filtering with the last good policy
                    log.error("policy reload failed, keeping the previous one: %s", exc)
        return self.policy


_holder: _Holder | None = None


def _init_worker(source: PolicySource, policy: Policy | None = None) -> None:
    global _holder
    _holder = _Holder(source, policy)


def lookup_names(raw: bytes) -> tuple[str, ...]:
    """Host names in the body, for URI block lists (runs in a worker: it parses)."""
    return Mail(raw).domains


Classified = tuple[list[tuple[Verdict, float]], str]
"""One verdict per recipient group with the seconds filtering took, and the decoded Subject."""


def classify(
    raw: bytes,
    envelope: Envelope,
    groups: Sequence[tuple[str, ...]],
    facts: Facts,
    outbound: bool = False,
    generation: int = 0,
) -> Classified:
    """Verdicts per recipient group, and the Subject the outcome records (runs in a worker).

    The worker has parsed the message anyway: parsing its header again in the
    gateway for the Subject took a tenth of the gateway's time under load.
    """
    assert _holder is not None, "worker not initialised"
    policy = _holder.current(generation)
    mail = Mail(raw, envelope)
    out = []
    for rcpts in groups:
        start = time.perf_counter()
        verdict = evaluate(mail.for_recipients(rcpts), facts, policy, outbound=outbound)
        out.append((verdict, time.perf_counter() - start))
    return out, mail.subject[:SUBJECT_CHARS]


class Classifier:
    """The gateway's view of filtering: ``await classify(...)`` never blocks the loop."""

    def __init__(
        self,
        source: PolicySource,
        processes: int,
        *,
        hard_timeout: float = 300.0,
        on_restart: Callable[[], None] = lambda: None,
    ) -> None:
        self.source = source
        # Loaded here, in the gateway: a broken policy must stop start-up, not every worker.
        policy = source.load()
        self.config = policy.config
        self.dnsbl = DnsblClient(policy.config.dns)
        self.lookup = make_lookup(policy.config.dns)
        self.processes = processes
        self.generation = 0  # bumped by each learned model; workers reload the model file
        if processes == 0:
            _init_worker(source, policy)  # the thread shares this process: no second load
        self.pool = FilterPool(
            processes, _init_worker, (source,), hard_timeout=hard_timeout, on_restart=on_restart
        )

    async def facts(self, raw: bytes, envelope: Envelope, *, outbound: bool = False) -> Facts:
        """Block-list answers and, with ``[auth] enabled``, SPF/DKIM/DMARC, concurrently.

        ``outbound`` mail comes from a signed-in customer user, often on a home or mobile
        address that IP block lists and SPF would wrongly hold against it: only the
        body's host names are looked up.
        """
        zones = self.config.dnsbl
        if outbound:
            envelope = replace(envelope, client_ip=None)
        checked = None
        if self.config.auth.enabled and not outbound:
            checked = asyncio.create_task(
                authenticate(Mail(raw, envelope), self.config.auth, self.lookup)
            )
        results: tuple[DnsblResult, ...] = ()
        if zones:
            names: tuple[str, ...] = ()
            if any(z.kind == "domain" for z in zones):
                names = await self.pool.run(lookup_names, raw)
            results = await self.dnsbl.lookup(zones, envelope.client_ip, names)
        return Facts(dnsbl=results, auth=await checked if checked is not None else None)

    async def classify(
        self,
        raw: bytes,
        envelope: Envelope,
        groups: Sequence[tuple[str, ...]],
        facts: Facts,
        *,
        outbound: bool = False,
    ) -> Classified:
        return await self.pool.run(
            classify, raw, envelope, list(groups), facts, outbound, self.generation
        )

    def use_model(self, model: TokenModel) -> None:
        """Put a learned model (already saved to the model file) in use for the next message.

        A thread worker takes the object itself; process workers are told by a
        higher generation with their next call and load the file then.
        """
        self.generation += 1
        if self.processes == 0:
            assert _holder is not None
            _holder.use_model(model)
            _holder.generation = self.generation

    def close(self) -> None:
        self.pool.close()
