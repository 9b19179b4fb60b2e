"""From a verdict to what the gateway does: deliveries to make, mail to hold, the event.

Pure: given the spooled message, one recipient domain's verdict and the
registered domains, it returns records; the processor stores them in one
transaction. Retention (SPEC 3): spam 14 days, virus 30 days; mass-mailers
are deleted at once and never stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from filters.lists import domain_of
from filters.mail import Mail
from filters.verdict import Action, Category, Verdict
from service.rewrite import COPY_HEADER, verdict_headers
from store.records import (
    DeliveryKind,
    EventRecord,
    Held,
    NewDelivery,
    Outcome,
    Spooled,
    header_lines,
)

DAY = 86400.0
RETENTION = {Category.SPAM: 14 * DAY, Category.VIRUS: 30 * DAY, Category.CONTENT: 14 * DAY}

DomainOutcome = tuple[EventRecord, list[NewDelivery], Held | None]


def _hits(verdict: Verdict) -> tuple[dict[str, Any], ...]:
    return tuple(
        {**asdict(h), "stage": str(h.stage), "action": h.action.label} for h in verdict.hits
    )


def decide(
    message: Spooled,
    domain: str,
    rcpt_tos: tuple[str, ...],
    verdict: Verdict,
    now: float,
    *,
    subject: str = "",
    quarantine_ok: bool = True,
) -> DomainOutcome:
    """The deliveries, quarantine entry and event for one domain's recipients.

    ``quarantine_ok`` False means the quarantine cannot take the message:
    spam and content are then tagged and delivered instead (SPEC 3), and the
    event says so. A virus is never delivered for want of room: it stays held
    (the processor then keeps the message spooled until the quarantine has room).
    """
    prefix = verdict_headers(verdict, message.id)
    # "is_spam" marks a delivery whose sender must not get a DSN (backscatter): spam, and
    # mail from a client on an IP block list, whose envelope sender is likely forged.
    is_spam = verdict.category is Category.SPAM or sender_suspect(verdict)
    items: list[NewDelivery] = []
    held: Held | None = None
    detail = None
    action = verdict.action

    if action is Action.QUARANTINE and not quarantine_ok and not verdict.is_virus:
        action, detail = Action.TAG_SUBJECT, "quarantine unavailable: tagged and delivered"
        prefix += b"X-Mailmoat-Quarantine: unavailable\r\n"

    if action <= Action.TAG_SUBJECT:
        tag = verdict.subject_tag or ("[SPAM]" if detail else None)
        items.append(
            NewDelivery(
                DeliveryKind.DELIVER,
                domain,
                message.mail_from,
                rcpt_tos,
                prefix,
                tag,
                body=verdict.rewritten,
                is_spam=is_spam,
            )
        )
        outcome = Outcome.DELIVERED
    elif action is Action.REDIRECT and verdict.redirect_to:
        prefix += f"X-Mailmoat-Original-Recipients: {', '.join(rcpt_tos)}\r\n".encode()
        target = verdict.redirect_to
        items.append(
            NewDelivery(
                DeliveryKind.REDIRECT,
                domain_of(target),
                message.mail_from,
                (target,),
                prefix,
                body=verdict.rewritten,
                is_spam=is_spam,
            )
        )
        outcome = Outcome.REDIRECTED
    elif action is Action.QUARANTINE:
        held = Held(
            id=uuid.uuid4().hex,
            domain=domain,
            rcpt_tos=rcpt_tos,
            category=str(verdict.category),
            never_release=verdict.never_release,
            score=verdict.score,
            hits=_hits(verdict),
            expires_at=now + RETENTION.get(verdict.category, 14 * DAY),
            subject=subject,
            viruses=tuple(dict.fromkeys(v.name for v in verdict.viruses)),  # a bomb repeats one
        )
        outcome = Outcome.QUARANTINED
    else:
        outcome = Outcome.DELETED

    for admin in verdict.copy_to:
        items.append(
            NewDelivery(
                DeliveryKind.COPY,
                domain_of(admin),
                message.mail_from,
                (admin,),
                # Says it is a copy, so an admin (or the replay's sink) can tell it from the
                # message itself, which may have been held.
                prefix + header_lines([(COPY_HEADER, f"content rule copy for {admin}")]),
                is_spam=is_spam,
            )
        )
    record = EventRecord(
        domain=domain,
        action=action.label,
        category=str(verdict.category),
        outcome=outcome,
        score=verdict.score,
        symbols=verdict.symbols,
        hits=_hits(verdict),
        recipients=len(rcpt_tos),
        detail=detail,
    )
    return record, items, held


SUSPECT_SYMBOLS = frozenset({"BLACKLIST_DNSBL", "SPF_FAIL", "DMARC_REJECT", "DMARC_QUARANTINE"})
"""Hits that make the envelope sender untrustworthy for DSNs: a listed client, or a sender
that failed SPF or DMARC ([auth]); a DSN to it would likely be backscatter."""


def sender_suspect(verdict: Verdict) -> bool:
    """Whether a failure report to this message's sender would likely be backscatter."""
    return any(hit.symbol in SUSPECT_SYMBOLS for hit in verdict.hits)


UNSCANNED = "unscanned"
"""The quarantine category (and event category) of mail the filter could not judge."""


def unscanned(
    message: Spooled,
    domain: str,
    rcpt_tos: tuple[str, ...],
    now: float,
    *,
    reason: str,
    subject: str = "",
) -> DomainOutcome:
    """Hold for an operator what filtering failed on: it might be a virus, so never deliver it.

    Kept as long as viruses, released like one (by an operator), and the event
    says why, so nothing accepted ends without a record.
    """
    hit = {"stage": "gateway", "symbol": "UNSCANNED", "reason": reason, "action": "quarantine"}
    held = Held(
        id=uuid.uuid4().hex, domain=domain, rcpt_tos=rcpt_tos, category=UNSCANNED,
        never_release=False, score=0.0, hits=(hit,), expires_at=now + RETENTION[Category.VIRUS],
        subject=subject,
    )  # fmt: skip
    record = EventRecord(
        domain=domain, action="quarantine", category=UNSCANNED, outcome=Outcome.QUARANTINED,
        score=0.0, symbols=("UNSCANNED",), hits=(hit,), recipients=len(rcpt_tos), detail=reason,
    )  # fmt: skip
    return record, [], held


def group_by_domain(rcpt_tos: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Recipients per domain, in order: each domain's policy decides for its own users."""
    groups: dict[str, list[str]] = {}
    for rcpt in rcpt_tos:
        groups.setdefault(domain_of(rcpt), []).append(rcpt)
    return {d: tuple(r) for d, r in groups.items()}


SUBJECT_CHARS = 998
"""The longest Subject recorded (RFC 5322's line limit)."""


def subject_of(raw: bytes) -> str:
    """The decoded Subject, from the header block only (cheap even for a 20 MB message)."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw[: end if end >= 0 else 65_536][:65_536]
    return Mail(head + b"\r\n\r\n").subject[:SUBJECT_CHARS]
