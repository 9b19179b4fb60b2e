"""Quarantine chores on a schedule: retention purge, digests, new-account notices, links.

The purge deletes in small batches, each its own transaction on the writer
thread, yielding between batches, so purging 100,000 expired messages never
holds up the SMTP side for long. Time comes from the injected clock, so
tests run months of retention in a moment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import delete
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from filters.lists import domain_of
from quarantine import accounts, digest, held, links
from quarantine.config import QuarantineConfig
from quarantine.held import HeldSummary
from quarantine.service import NotFound, Quarantine, Refused
from store.leases import Job
from store.principal import LINK, Principal
from store.quarantine_tables import link_uses
from store.records import Delivery, DeliveryKind, NewDelivery

log = logging.getLogger("mailmoat.quarantine")


def forget_used_links(conn: Connection, before: float) -> int:
    """Drop the nonces of links used before ``before``: those links have expired anyway."""
    return conn.execute(delete(link_uses).where(link_uses.c.used_at < before)).rowcount


class Upkeep:
    """Runs the purge and the digests; builds notices; follows one-click digest links."""

    def __init__(
        self,
        quarantine: Quarantine,
        config: QuarantineConfig,
        *,
        secret: bytes,
        base_url: str,
        hostname: str,
        clock: Callable[[], float],
    ) -> None:
        self.quarantine = quarantine
        self.config = config
        self.secret = secret
        self.base_url = base_url.rstrip("/")
        self.hostname = hostname
        self.clock = clock
        self.sender = f"quarantine@{hostname}"
        self._next_purge = 0.0

    # --- retention ------------------------------------------------------------------------

    async def purge(self) -> tuple[int, int]:
        """Delete expired held mail and bodies nothing needs; returns (held, bodies) removed."""
        expired = await self._in_batches(lambda: self.quarantine.write(held.purge, self.clock()))
        bodies = await self._in_batches(lambda: self.quarantine.write(held.purge_bodies))
        # A spent link's nonce matters only while the link could verify: digest links live
        # link_ttl, sign-in links 15 minutes; a day's margin covers both whatever the config.
        horizon = self.clock() - max(self.config.link_ttl, 86400.0)
        await self.quarantine.write(forget_used_links, horizon)
        if expired or bodies:
            log.info("purged", extra={"held": expired, "bodies": bodies})
        return expired, bodies

    @staticmethod
    async def _in_batches(batch: Callable[[], Awaitable[int]]) -> int:
        """Run ``batch`` until it removes nothing; each batch is its own short transaction."""
        total = 0
        while n := await batch():
            total += n
            await asyncio.sleep(0)  # let SMTP sessions run between batches
        return total

    # --- digests and notices ----------------------------------------------------------------

    def _link(self, action: str, item: digest.DigestItem, recipient: str) -> str:
        token = links.sign(
            self.secret, action=action, held_id=item.held_id, recipient=recipient,
            expires_at=self.clock() + self.config.link_ttl, nonce=links.new_nonce(),
        )  # fmt: skip
        return f"{self.base_url}/q/{token}"

    async def send_digests(self) -> int:
        """One digest per due account with something new; returns how many were queued."""
        if not self.config.digests:
            return 0
        now = self.clock()
        sent = 0
        for account in await self.quarantine.read(accounts.find, None):
            due = digest.digest_due(
                mode=account.notify, every_hours=account.every_hours,
                last_sent_at=account.last_digest_at, now=now, send_hour=self.config.digest_hour,
                opened_at=account.created_at,
            )  # fmt: skip
            if due and await self._digest(account, now):
                sent += 1
        return sent

    async def _digest(self, account: accounts.Account, now: float) -> bool:
        pending = await self.quarantine.read(accounts.pending, account)
        if not pending:
            return False
        items = [
            digest.DigestItem(p.held_id, p.sender, p.subject, p.quarantined_at, p.score,
                              p.category, p.why, p.viruses)
            for p in pending
        ]  # fmt: skip
        address = account.address

        def link_for(action: str, item: digest.DigestItem) -> str:
            return self._link(action, item, address)

        body = digest.render_digest(
            recipient=address, items=items, base_url=f"{self.base_url}/my/", link_for=link_for,
            sender=self.sender, now=now, hostname=self.hostname,
        )  # fmt: skip
        newest = max(p.quarantined_at for p in pending)
        item = NewDelivery(DeliveryKind.DIGEST, domain_of(address), "", (address,), body=body)

        def transaction(conn: Connection) -> list[Delivery] | None:
            if not accounts.digest_sent(conn, address, newest, account.last_digest_at):
                return None  # another node sent this digest meanwhile
            return self.quarantine.store.insert_deliveries(
                conn, pending[0].message_id, now, [item], now
            )

        created = await self.quarantine.write(transaction)
        if created is None:
            return False
        self.quarantine.outbound.add(created)
        return True

    def notices(self, addresses: list[str], now: float) -> list[NewDelivery]:
        """Mail telling each recipient its quarantine account was opened (SPEC 3 [11]).

        Built inside the transaction that opens the accounts (``record_filtered``),
        so the notice is queued with the message's outcome in one commit.
        """
        if not self.config.notify_new_accounts:
            return []
        return [
            NewDelivery(DeliveryKind.NOTIFY, domain_of(a), "", (a,),
                        body=digest.render_notice(recipient=a, sender=self.sender,
                                                  base_url=f"{self.base_url}/my/", now=now,
                                                  hostname=self.hostname))
            for a in addresses
        ]  # fmt: skip

    # --- one-click links ----------------------------------------------------------------------

    async def claimed(self, token: str) -> tuple[links.LinkClaim, HeldSummary]:
        """What a valid link is for and the message it names; raises LinkError or NotFound."""
        claim = links.verify(self.secret, token, now=self.clock())
        found = await self.quarantine.read(held.get, claim.held_id)
        if found is None or claim.recipient not in found.summary.recipients:
            raise NotFound(claim.held_id)
        return claim, found.summary

    async def follow(self, token: str, reason: str = "") -> str:
        """Carry out a digest link once; returns what was done. Raises LinkError, Refused."""
        claim, summary = await self.claimed(token)
        if claim.action == "request_release" and not reason.strip():
            raise Refused("say why you need this message: an operator reads it", 422)
        try:
            await self.quarantine.write(
                lambda conn: conn.execute(link_uses.insert().values(nonce=claim.nonce,
                                                                    used_at=self.clock()))
            )  # fmt: skip
        except IntegrityError:
            raise Refused("this link was already used", 410) from None
        who = Principal(f"{LINK}{claim.recipient}", False, frozenset({summary.domain}))
        if claim.action == "release":
            done = await self.quarantine.release(who, claim.held_id, [claim.recipient])
            return done.detail
        if claim.action == "delete":
            deleted = await self.quarantine.delete(who, claim.held_id)
            return "deleted" if deleted else "already gone; nothing done"
        if claim.action == "request_release":
            await self.quarantine.request_release(who, claim.held_id, reason.strip(),
                                                  [claim.recipient])  # fmt: skip
            return "release requested; an operator will decide and you will get the message"
        await self.quarantine.sender_to_list(who, claim.held_id, "whitelist", "user")
        return f"{summary.sender} is now allowed for {claim.recipient}"

    # --- schedule --------------------------------------------------------------------------------

    async def _holds(self, job: Job) -> bool:
        """Whether this node runs ``job`` now: one node at a time holds its lease."""
        store = self.quarantine.store
        return await self.quarantine.writer.call(store.hold_job, job, self.clock())

    async def round(self) -> int:
        """One round: purge when due, then digests; returns how many digests went out.

        With several nodes on one store, each chore runs on the node holding its
        lease; the others skip it until that node stops renewing.
        """
        now = self.clock()
        if now >= self._next_purge and await self._holds(Job.PURGE):
            await self.purge()
            self._next_purge = now + self.config.purge_interval
        return await self.send_digests() if await self._holds(Job.DIGESTS) else 0

    async def run(self) -> None:
        """Purge at start and every ``purge_interval``; digests every ``digest_interval``."""
        while True:
            try:
                await self.round()
            except Exception:  # a failed round is retried next round, never stops the gateway
                log.exception("quarantine upkeep failed; retrying next round")
            await asyncio.sleep(self.config.digest_interval)
