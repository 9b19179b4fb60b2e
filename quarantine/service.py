"""What customers and operators do with held mail, with the contract's rules enforced.

Every call takes the caller's ``Principal``; anything outside its domains is
``NotFound``, exactly like a missing id. Reads run on a worker thread (WAL
lets them proceed beside the writer); writes run on the store's writer
thread, each in one transaction: a release marks the message, queues its
delivery and records the false-positive claim together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy.engine import Connection

from filters.lists import domain_of
from quarantine import held, release_rules, requests, senderlists
from quarantine.held import Filters, HeldMessage, HeldSummary
from store.principal import Principal
from store.quarantine_tables import training_labels
from store.records import Delivery, DeliveryKind, NewDelivery, header_lines
from store.writer import StoreWriter

P = ParamSpec("P")
T = TypeVar("T")

OPERATOR_RELEASE = frozenset({"virus", "unscanned"})
"""Held categories only an operator may release: viruses, and mail the filter could not judge."""

ReleaseHook = Callable[[Connection, HeldMessage, str, float, float | None], None]
"""Called in the release transaction (message, who, when, when requested): the SLA monitor."""


class Outbound(Protocol):
    """The gateway's delivery queue, as far as releases need it: queue stored deliveries."""

    def add(self, deliveries: Iterable[Delivery]) -> None: ...


class NotFound(LookupError):
    """No such object, or not one the caller may see."""


class Refused(Exception):
    """The request is understood but the contract forbids it; ``status`` is the HTTP code."""

    def __init__(self, detail: str, status: int = 409) -> None:
        super().__init__(detail)
        self.status = status


@dataclass(frozen=True, slots=True)
class Released:
    released: bool
    targets: tuple[str, ...]
    detail: str


class Quarantine:
    """The quarantine as the API, digests and links use it."""

    def __init__(
        self,
        *,
        writer: StoreWriter,
        outbound: Outbound,
        clock: Callable[[], float],
        on_release: ReleaseHook | None = None,
        on_lists_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.writer = writer
        self.store = writer.store
        self.outbound = outbound
        self.clock = clock
        self.on_release = on_release
        self.on_lists_changed = on_lists_changed

    async def read(
        self, fn: Callable[Concatenate[Connection, P], T], *a: P.args, **k: P.kwargs
    ) -> T:
        def run() -> T:
            return self.store.read(fn, *a, **k)

        return await asyncio.to_thread(run)

    async def write(
        self, fn: Callable[Concatenate[Connection, P], T], *a: P.args, **k: P.kwargs
    ) -> T:
        def run() -> T:
            return self.store.write(fn, *a, **k)

        return await self.writer.call(run)

    # --- held mail ------------------------------------------------------------------

    @staticmethod
    def _domains(principal: Principal) -> list[str] | None:
        return None if principal.operator else sorted(principal.domains)

    async def find(
        self, principal: Principal, filters: Filters, cursor: str | None, limit: int
    ) -> tuple[list[HeldSummary], str | None]:
        return await self.read(
            held.find, self._domains(principal), filters, cursor=cursor, limit=limit
        )

    async def get(self, principal: Principal, held_id: str) -> HeldMessage:
        found = await self.read(held.get, held_id)
        if found is None or not principal.sees(found.summary.domain):
            raise NotFound(held_id)
        return found

    async def delete(self, principal: Principal, held_id: str) -> bool:
        await self.get(principal, held_id)
        return await self.write(held.mark, held_id, "deleted", self.clock())

    async def release(
        self,
        principal: Principal,
        held_id: str,
        to: Sequence[str] | None,
        reason: str | None = None,
    ) -> Released:
        """Deliver a held message, unfiltered, to its recipients or other addresses of the customer.

        Virus mail needs an operator (whose call, with ``reason``, is the
        authorisation record); never-release viruses are refused to everyone.
        """
        message = await self.get(principal, held_id)
        summary = message.summary
        if summary.state != "held":
            return Released(False, (), f"already {summary.state}; nothing done")
        targets = self._targets(principal, summary, to)
        if summary.category in OPERATOR_RELEASE:
            self._check_virus(principal, summary, reason)
            request = await self.write(
                requests.create, held_id=held_id, by=principal.name, reason=reason or "",
                targets=targets, now=self.clock(),
            )  # fmt: skip
            return await self._release(principal, message, targets, request=request)
        return await self._release(principal, message, targets)

    def _targets(
        self, principal: Principal, summary: HeldSummary, to: Sequence[str] | None
    ) -> tuple[str, ...]:
        own = principal.domains if not principal.operator else {summary.domain}
        try:
            return release_rules.release_targets(
                requested=to, original_rcpts=summary.recipients, sender=summary.sender,
                customer_domains=own,
            )  # fmt: skip
        except release_rules.ReleaseRefused as exc:
            raise Refused(str(exc), 422) from None

    @staticmethod
    def _check_virus(principal: Principal, summary: HeldSummary, reason: str | None) -> None:
        try:
            release_rules.virus_release_allowed(
                never_release=summary.never_release, authorised=principal.operator and bool(reason)
            )
        except release_rules.ReleaseRefused as exc:
            raise Refused(str(exc), 403) from None

    async def _release(
        self,
        principal: Principal,
        message: HeldMessage,
        targets: tuple[str, ...],
        request: requests.Request | None = None,
    ) -> Released:
        summary = message.summary
        now = self.clock()
        prefix = header_lines([
            ("X-Mailmoat-Released", f"by {principal.name}; {formatdate(now, usegmt=True)}"),
            ("X-Mailmoat-Queue-Id", message.message_id),
        ])  # fmt: skip
        by_domain: dict[str, list[str]] = {}
        for target in targets:
            by_domain.setdefault(domain_of(target), []).append(target)
        items = [
            NewDelivery(DeliveryKind.RELEASE, d, summary.sender, tuple(r), prefix)
            for d, r in by_domain.items()
        ]

        def transaction(conn: Connection) -> list[Any] | None:
            if not held.mark(conn, summary.id, "released", now):
                return None
            if request is not None:
                requests.decide(conn, request.id, status="released", by=principal.name,
                                decision="released", now=now)  # fmt: skip
            conn.execute(training_labels.insert().values(
                message_id=message.message_id, label="ham", source="release", created_at=now,
                domain=summary.domain, created_by=principal.name,
            ))  # fmt: skip
            if self.on_release is not None:
                requested_at = request.requested_at if request is not None else None
                self.on_release(conn, message, principal.name, now, requested_at)
            return self.store.insert_deliveries(conn, message.message_id, now, items, now)

        created = await self.write(transaction)
        if created is None:
            return Released(False, (), "already released; nothing done")
        self.outbound.add(created)
        return Released(True, targets, f"released to {', '.join(targets)}")

    # --- virus release requests ---------------------------------------------------------

    async def request_release(
        self, principal: Principal, held_id: str, reason: str, to: Sequence[str] | None
    ) -> requests.Request:
        message = await self.get(principal, held_id)
        summary = message.summary
        if summary.category not in OPERATOR_RELEASE:
            raise Refused("only virus quarantine needs a release request; release it directly")
        if summary.never_release:
            raise Refused(f"{summary.id} carries a virus that is never released", 403)
        if summary.state != "held":
            raise Refused(f"{summary.id} is already {summary.state}")
        targets = self._targets(principal, summary, to)
        if await self.read(requests.pending_for, held_id) is not None:
            raise Refused("a release request for this message is already pending")
        return await self.write(requests.create, held_id=held_id, by=principal.name,
                                reason=reason, targets=targets, now=self.clock())  # fmt: skip

    async def release_requests(
        self, principal: Principal, status: str | None
    ) -> list[requests.Request]:
        return await self.read(requests.find, self._domains(principal), status)

    async def decide(
        self, principal: Principal, request_id: str, approve: bool, reason: str
    ) -> requests.Request:
        """An operator approves (the message is released) or refuses a pending request."""
        request = await self.read(requests.get, request_id)
        if request is None or not principal.sees(request.domain):
            raise NotFound(request_id)
        if not principal.operator:
            raise Refused("only an operator can authorise a virus release", 403)
        if request.status != "pending":
            raise Refused(f"request is already {request.status}")
        if approve:
            message = await self.get(principal, request.held_id)
            if message.summary.never_release:
                raise Refused("this virus is never released", 403)
            await self._release(principal, message, request.targets, request=request)
        else:
            await self.write(requests.decide, request_id, status="refused", by=principal.name,
                             decision=reason, now=self.clock())  # fmt: skip
        found = await self.read(requests.get, request_id)
        assert found is not None
        return found

    # --- sender lists -------------------------------------------------------------------

    async def add_entry(
        self, principal: Principal, *, domain: str, scope: str, owner: str, kind: str, value: str
    ) -> senderlists.Entry:
        if not principal.sees(domain):
            raise NotFound(domain)
        entry = await self.write(
            senderlists.add, domain=domain, scope=scope, owner=owner, kind=kind, value=value,
            by=principal.name, now=self.clock(),
        )  # fmt: skip
        self.on_lists_changed()
        return entry

    async def entries(self, principal: Principal) -> list[senderlists.Entry]:
        return await self.read(senderlists.find, self._domains(principal))

    async def remove_entry(self, principal: Principal, entry_id: int) -> None:
        entry = await self.read(senderlists.get, entry_id)
        if entry is None or not principal.sees(entry.domain):
            raise NotFound(str(entry_id))
        await self.write(senderlists.remove, entry_id)
        self.on_lists_changed()

    async def sender_to_list(
        self, principal: Principal, held_id: str, kind: str, scope: str
    ) -> list[senderlists.Entry]:
        """Allow or block the sender of a held message, for its recipients or their domain."""
        summary = (await self.get(principal, held_id)).summary
        sender = summary.sender.strip("<>").lower()
        if not sender:
            raise Refused("the message has no sender address to list", 422)
        if scope == "domain":
            owners = [summary.domain]
        else:
            owners = [r for r in summary.recipients if domain_of(r) == summary.domain]
        return [
            await self.add_entry(principal, domain=summary.domain, scope=scope, owner=o,
                                 kind=kind, value=sender)
            for o in owners
        ]  # fmt: skip
