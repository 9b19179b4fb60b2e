"""Mails the scheduled reports ``mailings.due_reports`` names, each once, through the gateway.

The text is short (each level measured against its target, registered users
against usage, mail counts); the full figures stay one request away at
``/sla/summary?month=``. A failed report is logged and tried again at the
next check; the others still go out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from sqlalchemy import Engine, select

from slamonitor.config import SlaSettings
from slamonitor.mailings import (
    Due,
    ReportKind,
    Send,
    antispam_counts,
    content_lines,
    due_reports,
)
from slamonitor.periods import Month
from slamonitor.probe import Clock, Sleep, sleep
from slamonitor.report import build
from slamonitor.usage import catch_up
from store.sla_tables import report_mailings

log = logging.getLogger("mailmoat.sla.mailer")


def _sla_text(engine: Engine, due: Due, settings: SlaSettings, now: float) -> str:
    year, month = (int(part) for part in due.label.split("-"))
    data = build(engine, Month(year, month, settings.timezone), settings, now=now,
                 domain=due.domain).data  # fmt: skip
    levels = data["levels"]
    assert isinstance(levels, dict)
    lines = []
    for name in ("latency", "false_positives", "false_negatives", "availability", "virus_release"):
        level = levels[name]
        verdict = {None: "not measured", True: "met", False: "MISSED"}[level["met"]]
        lines.append(f"{name}: {verdict} (measured {level['measured']}, target {level['target']})")
    usage = data["usage"]
    assert isinstance(usage, dict)
    for domain, u in usage.items():
        lines.append(
            f"{domain}: {u['scanned_recipients']} recipients scanned,"
            f" {u['registered_users'] or 'no'} users registered"
            + (" (above the registered number)" if u["exceeds"] else "")
        )
    exclusions = data["exclusions"]
    assert isinstance(exclusions, list)
    lines.append(f"exclusion windows: {len(exclusions)}; events: {data['events']}")
    return "\n".join(lines)


def render(engine: Engine, due: Due, settings: SlaSettings, now: float) -> tuple[str, str]:
    """Subject and plain-text body of one due report."""
    who = due.domain or "all customers"
    if due.kind is ReportKind.SLA_MONTHLY:
        subject = f"Mailmoat service levels {due.label} for {who}"
        body = _sla_text(engine, due, settings, now)
        more = f"/sla/summary?month={due.label}" + (f"&domain={due.domain}" if due.domain else "")
    else:
        subject = f"Mailmoat anti-spam report {due.label} for {who}"
        counts = antispam_counts(engine, due)
        total = sum(counts["category"].values())
        body = "\n".join(
            [f"messages scanned: {total}"]
            + [f"{name} {k}: {n}" for name, by in counts.items() for k, n in by.items()]
            + content_lines(engine, due)
        )
        more = f"/api/v1/reports?domain={due.domain}"
    return subject, f"{subject}\n\n{body}\n\nFull figures over the REST API: GET {more}\n"


RETRY_SECONDS = 5.0
"""How soon a report that failed to go out is tried again."""


class ReportMailer:
    """Every ``reports.check_seconds``, mails the reports that are due; ``contacts`` maps a
    customer domain to the address its reports go to."""

    def __init__(
        self,
        engine: Engine,
        settings: SlaSettings,
        contacts: Mapping[str, str],
        send: Send,
        *,
        clock: Clock,
        sleeper: Sleep = sleep,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.contacts = dict(contacts)
        self.send = send
        self.clock = clock
        self.sleep = sleeper
        self.failed = 0

    def _sent(self) -> set[tuple[str, str, str]]:
        columns = (report_mailings.c.kind, report_mailings.c.domain, report_mailings.c.label)
        with self.engine.connect() as conn:
            return {(k, d, lab) for k, d, lab in conn.execute(select(*columns))}

    def _record(self, due: Due, at: float) -> None:
        kind, domain, label = due.key
        with self.engine.begin() as conn:
            conn.execute(
                report_mailings.insert().values(
                    kind=kind, domain=domain, label=label, recipient=due.recipient, sent_at=at
                )
            )

    async def send_due(self) -> int:
        """Send what is due now; returns how many went out."""
        now = self.clock()
        sent = await asyncio.to_thread(self._sent)
        due = due_reports(now, self.settings.timezone, self.settings.reports, self.contacts, sent)
        if due:
            await asyncio.to_thread(catch_up, self.engine, self.settings.timezone)
        done = 0
        self.failed = 0
        for report in due:
            try:
                subject, body = await asyncio.to_thread(
                    render, self.engine, report, self.settings, now
                )
                await self.send(report.recipient, subject, body)
                await asyncio.to_thread(self._record, report, now)
            except Exception:
                log.exception("report %s not mailed; trying again soon", report.key)
                self.failed += 1
                continue
            done += 1
        return done

    async def run(self) -> None:
        """Check until cancelled; after a failed report (a busy store, say) check again soon."""
        while True:
            try:
                await self.send_due()
            except Exception:  # the store busy while usage catches up: the task must not die
                log.exception("checking for due reports failed; trying again soon")
                self.failed += 1
            wait = self.settings.reports.check_seconds
            await self.sleep(min(wait, RETRY_SECONDS) if self.failed else wait)
