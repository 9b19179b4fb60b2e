"""Helpdesk response targets (SPEC 6) as data: any priority table, with or without business hours.

A table lists priorities; each has a share target and a response rule:
``elapsed`` (wall-clock hours; ``after_hours`` gives a different figure for
tickets opened while the desk is closed), ``business`` (hours counted only
while open) or ``same_business_day`` (by the close of the day it was opened,
or of the next open day). Built-in tables come from the seeds: the Telstra
terms (default), Mithi's S1-S4 plans and Message Partners' plans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slamonitor.business import BusinessHours

HOUR = 3600.0


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["elapsed", "business", "same_business_day"] = Field(
        "elapsed", description="how the response time is counted"
    )
    hours: float = Field(0.0, ge=0, description="hours allowed (unused for same_business_day)")
    after_hours: float | None = Field(
        None, gt=0, description="elapsed hours for tickets opened while the desk is closed"
    )


class Priority(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="as tickets name it, e.g. Critical or S1")
    definition: str = Field("", description="when a ticket gets this priority")
    target: float = Field(gt=0, le=1, description="share of tickets to answer in time")
    response: Response


class HelpdeskTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    business_hours: BusinessHours | None = Field(
        None, description="desk hours; required by business-hour rules"
    )
    priorities: tuple[Priority, ...]

    @model_validator(mode="after")
    def _hours_when_needed(self) -> HelpdeskTable:
        needs = [
            p.name
            for p in self.priorities
            if p.response.kind != "elapsed" or p.response.after_hours is not None
        ]
        if needs and self.business_hours is None:
            raise ValueError(f"table {self.name}: priorities {needs} need business_hours")
        return self

    def priority(self, name: str) -> Priority:
        for p in self.priorities:
            if p.name.lower() == name.lower():
                return p
        names = ", ".join(p.name for p in self.priorities)
        raise ValueError(f"unknown priority {name!r}; table {self.name} has {names}")

    def deadline(self, priority: str, opened_at: float) -> float:
        """When the first response is due for a ticket opened at ``opened_at``."""
        rule = self.priority(priority).response
        desk = self.business_hours
        if rule.kind == "elapsed":
            closed = (
                desk is not None and rule.after_hours is not None and not desk.is_open(opened_at)
            )
            hours = rule.after_hours if closed and rule.after_hours is not None else rule.hours
            return opened_at + hours * HOUR
        assert desk is not None  # by _hours_when_needed
        if rule.kind == "business":
            return desk.add(opened_at, rule.hours * HOUR)
        return desk.end_of_day(opened_at)


def _elapsed(hours: float, after: float | None = None) -> Response:
    return Response(kind="elapsed", hours=hours, after_hours=after)


TELSTRA = HelpdeskTable(
    name="telstra",
    priorities=(
        Priority(
            name="Critical",
            definition="loss of service, no workaround",
            target=0.95,
            response=_elapsed(2),
        ),
        Priority(
            name="Major",
            definition="loss with workaround, partial loss, impairment",
            target=0.85,
            response=_elapsed(4),
        ),
        Priority(
            name="Minor",
            definition="potentially service affecting",
            target=0.75,
            response=_elapsed(8),
        ),
        Priority(
            name="Information", definition="no service impact", target=0.65, response=_elapsed(24)
        ),
    ),
)

# Mithi (seed 001): S1 within N working hours, S2-S4 the same working day; public holidays
# are exempt (add them to business_hours.holidays). The seed gives no share: every ticket.
_MITHI_HOURS = BusinessHours(
    tz="Asia/Kolkata",
    hours={
        **dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), "08:00-20:00"),
        "sat": "09:00-18:00",
    },
)
_SEVERITY = {
    "S1": "show stopper: production service down, no workaround",
    "S2": "major functionality impaired, workaround available",
    "S3": "minor functionality impaired",
    "S4": "general usage questions",
}


def _mithi(plan: str, s1_hours: float) -> HelpdeskTable:
    same_day = Response(kind="same_business_day")
    s1 = Response(kind="business", hours=s1_hours)
    return HelpdeskTable(
        name=f"mithi-{plan}",
        business_hours=_MITHI_HOURS,
        priorities=tuple(
            Priority(
                name=name, definition=text, target=1.0, response=s1 if name == "S1" else same_day
            )
            for name, text in _SEVERITY.items()
        ),
    )


# Message Partners (seed 000): one response time per plan whatever the severity, shorter in
# business hours (08:00-18:00 at GMT-5, weekdays assumed). "Guarantee": every ticket.
_MP_HOURS = BusinessHours(
    tz="Etc/GMT+5", hours=dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), "08:00-18:00")
)


def _message_partners(plan: str, inside: float, outside: float) -> HelpdeskTable:
    return HelpdeskTable(
        name=f"messagepartners-{plan}",
        business_hours=_MP_HOURS,
        priorities=tuple(
            Priority(name=name, definition=text, target=1.0, response=_elapsed(inside, outside))
            for name, text in _SEVERITY.items()
        ),
    )


TABLES = {
    t.name: t
    for t in (
        TELSTRA,
        _mithi("assurance", 4),
        _mithi("privilege", 2),
        _mithi("priority", 1),
        _message_partners("standard", 2, 4),
        _message_partners("enhanced", 1, 2),
        _message_partners("priority", 1, 2),
    )
}


@dataclass(frozen=True, slots=True)
class TicketTimes:
    priority: str
    opened_at: float
    first_response_at: float | None


def measure(table: HelpdeskTable, tickets: Sequence[TicketTimes], now: float) -> dict[str, object]:
    """Per priority: tickets answered in time, late, and still within their deadline."""
    result: dict[str, object] = {}
    for p in table.priorities:
        within = late = pending = 0
        for t in tickets:
            if t.priority.lower() != p.name.lower():
                continue
            due = table.deadline(p.name, t.opened_at)
            answered = t.first_response_at
            if answered is not None and answered <= due:
                within += 1
            elif answered is not None or now > due:
                late += 1
            else:
                pending += 1
        share = within / (within + late) if within + late else None
        result[p.name] = {
            "target": p.target,
            "measured": share,
            "met": None if share is None else share >= p.target,
            "within": within,
            "late": late,
            "pending": pending,
        }
    return result
