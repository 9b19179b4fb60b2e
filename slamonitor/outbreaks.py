"""Outbreak notices: customers are told once when a virus outbreak is declared (Telstra [6]).

The gateway declares an outbreak as the monthly report does (``exclusions``):
a 5-minute period in which more than 1 message in 200 is a virus. Like the
``MailmoatVirusOutbreak`` alert it also asks for a floor of traffic
(``min_messages`` in the period), so one virus in a quiet night tells nobody.
A new outbreak posts an ``emergency`` notice for every customer (read at
``GET /sla/notices``) and mails each domain's contact once; while later
periods stay above the ratio the same notice is stretched, so customers hear
once per outbreak, not once per period or per message. The notice in the
store is the memory: a restarted watch stretches it rather than posting
another. With several gateway nodes only the one holding the watch's lease
(``holds``) judges periods, so two nodes never both post and mail.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, case, func, select, update

from slamonitor.exclusions import OUTBREAK_RATIO
from slamonitor.periods import PERIOD
from slamonitor.probe import Clock, Holds, Sleep, always, sleep
from store.schema import events
from store.sla_tables import notices
from store.writer import Write

log = logging.getLogger("mailmoat.sla.outbreaks")

WATCH = "outbreak-watch"
"""``created_by`` of the notices this watch posts."""
LAG = 60.0
"""Seconds after a period ends before it is judged: its mail is filtered by then."""
HOLD = PERIOD
"""A notice stays current this long after its last hot period: until the next is judged."""

Mail = Callable[[str, str, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Period:
    """One 5-minute period's traffic: event rows and those that were viruses."""

    start: float
    total: int
    viruses: int

    def hot(self, ratio: float, min_messages: int) -> bool:
        return self.total >= min_messages and self.viruses > ratio * self.total


def traffic(conn: Connection, start: float) -> Period:
    """Events received in the period starting at ``start`` (all domains: an outbreak loads
    the whole service), and how many were viruses."""
    total, viruses = conn.execute(
        select(func.count(), func.coalesce(func.sum(case((events.c.category == "virus", 1),
                                                          else_=0)), 0))
        .where(events.c.received_at >= start, events.c.received_at < start + PERIOD)
    ).one()  # fmt: skip
    return Period(start, int(total), int(viruses))


def record(conn: Connection, period: Period, now: float) -> bool:
    """Stretch the notice of an outbreak still going on, or post a new one.

    True when a new notice was posted (customers must be told), False when
    an earlier period of the same outbreak already posted it.
    """
    ongoing = conn.execute(
        select(notices.c.id)
        .where(notices.c.created_by == WATCH, notices.c.end_at >= period.start + HOLD)
        .order_by(notices.c.end_at.desc())
        .limit(1)
    ).scalar()
    end = period.start + PERIOD + HOLD
    if ongoing is not None:
        conn.execute(
            update(notices)
            .where(notices.c.id == ongoing, notices.c.end_at < end)
            .values(end_at=end)
        )
        return False
    conn.execute(
        notices.insert().values(
            kind="emergency", domain=None, start_at=period.start, end_at=end,
            title="Virus outbreak", body=_body(period), created_by=WATCH, created_at=now,
        )
    )  # fmt: skip
    return True


def _body(period: Period) -> str:
    when = datetime.fromtimestamp(period.start, UTC).isoformat(timespec="minutes")
    return (
        f"From {when} UTC more than 1 message in {1 / OUTBREAK_RATIO:.0f} reaching Mailmoat"
        f" carries a virus ({period.viruses} of {period.total} in 5 minutes). Infected mail is"
        " stopped and held as usual; expect more virus alerts, and mail may take longer while"
        " the outbreak lasts (the latency level is not measured meanwhile)."
    )


class OutbreakWatch:
    """Judges each 5-minute period once it is over; tells customers when an outbreak starts."""

    def __init__(
        self,
        write: Write,
        contacts: Mapping[str, str],
        mail: Mail,
        *,
        clock: Clock,
        sleeper: Sleep = sleep,
        ratio: float = OUTBREAK_RATIO,
        min_messages: int = 200,
        holds: Holds = always,
    ) -> None:
        self.write = write
        self.holds = holds
        self.contacts = dict(contacts)
        self.mail = mail
        self.clock = clock
        self.sleep = sleeper
        self.ratio = ratio
        self.min_messages = min_messages

    def due(self) -> float:
        """The start of the latest period that ended at least ``LAG`` seconds ago."""
        return (self.clock() - LAG) // PERIOD * PERIOD - PERIOD

    async def check_once(self) -> Period | None:
        """Judge the latest finished period; returns it when it started a new outbreak."""
        start = self.due()
        now = self.clock()

        def transaction(conn: Connection) -> Period | None:
            period = traffic(conn, start)
            if not period.hot(self.ratio, self.min_messages):
                return None
            return period if record(conn, period, now) else None

        posted: Period | None = await self.write(transaction)
        if posted is not None:
            log.warning("virus outbreak declared from %.0f; telling customers", start)
            text = f"{_body(posted)}\n\nCurrent notices: GET /sla/notices?current=true\n"
            for contact in sorted(set(self.contacts.values())):
                try:
                    await self.mail(contact, "Virus outbreak declared", text)
                except Exception:  # one contact's failure must not keep the others uninformed
                    log.exception("outbreak notice to %s not queued", contact)
        return posted

    async def round(self) -> Period | None:
        """Judge the latest period if this node holds the watch; the new outbreak, if any."""
        return await self.check_once() if await self.holds() else None

    async def run(self) -> None:
        """Check each period once, LAG seconds after it ends, until cancelled."""
        while True:
            try:
                await self.round()
            except Exception:
                log.exception("outbreak check failed; the next period is checked as usual")
            await self.sleep(self.due() + 2 * PERIOD + LAG - self.clock())
