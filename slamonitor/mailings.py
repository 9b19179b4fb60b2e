"""Scheduled reports by mail: which are due (a pure function) and what each says.

The Telstra terms promise monthly service-level reports [Service levels 4]
and anti-spam reports by mail weekly or monthly [Email anti spam 18]. A
report is due once its period is over and it has not been sent: the monthly
SLA report to each customer domain with a contact and, for all customers, to
the operator; the anti-spam report (with the content rules' matches by rule
and by user) to the domains that asked for one. The gateway owns the mailing;
``mailer.ReportMailer`` asks what is due, renders it, hands it to the
gateway's ``send`` and records it as sent.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Engine, func, select

from slamonitor.periods import Month, zone
from store.content_report import content_counts
from store.schema import events

Send = Callable[[str, str, str], Awaitable[None]]
"""(address, subject, body): the gateway queues the mail."""


class ReportKind(enum.StrEnum):
    SLA_MONTHLY = "sla_monthly"
    ANTISPAM = "antispam"


class ReportSchedule(BaseModel):
    """``[sla.reports]``: who gets which report by mail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sla_monthly: bool = Field(
        False, description="mail each domain's contact its monthly SLA report"
    )
    operator: str | None = Field(None, description="address for the all-customer monthly report")
    antispam: dict[str, Literal["weekly", "monthly"]] = Field(
        default_factory=dict, description="domain to how often its anti-spam report is mailed"
    )
    check_seconds: float = Field(3600.0, gt=0, description="how often due reports are looked for")

    @field_validator("antispam")
    @classmethod
    def _lower(cls, value: dict[str, str]) -> dict[str, str]:
        return {k.lower().strip("."): v for k, v in value.items()}


@dataclass(frozen=True, slots=True)
class Due:
    """One report to send: ``domain`` None is every customer (the operator's copy)."""

    kind: ReportKind
    domain: str | None
    recipient: str
    label: str
    start: float
    end: float

    @property
    def key(self) -> tuple[str, str, str]:
        return (str(self.kind), self.domain or "*", self.label)


def last_week(now: float, tz: str) -> tuple[str, float, float]:
    """The ISO week before the one containing ``now``: (label, start, end) in ``tz``."""
    local = datetime.fromtimestamp(now, zone(tz))
    monday = datetime.combine(
        local.date() - timedelta(days=local.weekday()), datetime.min.time(), zone(tz)
    )
    start = monday - timedelta(days=7)
    year, week, _ = start.isocalendar()
    return f"{year}-W{week:02d}", start.timestamp(), monday.timestamp()


def last_month(now: float, tz: str) -> Month:
    current = Month.containing(now, tz)
    return (
        Month(current.year - 1, 12, tz)
        if current.month == 1
        else Month(current.year, current.month - 1, tz)
    )


def due_reports(
    now: float,
    tz: str,
    schedule: ReportSchedule,
    contacts: Mapping[str, str],
    sent: Collection[tuple[str, str, str]],
) -> list[Due]:
    """Reports of the last complete month (and week) not yet in ``sent``, by ``Due.key``."""
    month = last_month(now, tz)
    found: list[Due] = []
    if schedule.sla_monthly:
        for domain, contact in sorted(contacts.items()):
            found.append(
                Due(ReportKind.SLA_MONTHLY, domain, contact, month.label, month.start, month.end)
            )
    if schedule.operator is not None:
        found.append(
            Due(
                ReportKind.SLA_MONTHLY, None, schedule.operator, month.label, month.start, month.end
            )
        )
    week = last_week(now, tz)
    for domain, how_often in sorted(schedule.antispam.items()):
        if domain not in contacts:
            continue
        label, start, end = week if how_often == "weekly" else (month.label, month.start, month.end)
        found.append(Due(ReportKind.ANTISPAM, domain, contacts[domain], label, start, end))
    return [d for d in found if d.key not in sent]


def antispam_counts(engine: Engine, due: Due) -> dict[str, dict[str, int]]:
    """Messages by category and by action for the domain in the report's period."""
    counts: dict[str, dict[str, int]] = {"category": {}, "action": {}}
    with engine.connect() as conn:
        for name in ("category", "action"):
            column = events.c[name]
            query = (
                select(column, func.count())
                .where(events.c.received_at >= due.start, events.c.received_at < due.end)
                .group_by(column)
                .order_by(column)
            )
            if due.domain is not None:
                query = query.where(events.c.domain == due.domain)
            counts[name] = {str(k): int(n) for k, n in conn.execute(query)}
    return counts


def content_lines(engine: Engine, due: Due) -> list[str]:
    """The content-control part of the anti-spam report: matches by rule, then by user."""
    with engine.connect() as conn:
        counts = content_counts(conn, due.domain, due.start, due.end)
    lines = [f"content rule {rule}: {n}" for rule, n in sorted(counts.by_rule.items())]
    for user, rules in counts.user_table().items():
        lines.append(f"content user {user}: " + ", ".join(f"{r} {n}" for r, n in rules.items()))
    return lines or ["content rules: no matches"]
