"""What customers and operators do during the month: claims with decisions, helpdesk tickets.

Drawn once from the scenario's seed, then both written to the store and read
by the ground truth, so the two see the same people doing the same things.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulator.engine import Run
from simulator.mix import DELETED, DELIVERED, HAM, QUARANTINED, REDIRECTED, SPAM

BLOCKED = (QUARANTINED, DELETED, REDIRECTED)


@dataclass(frozen=True, slots=True)
class Claims:
    """Claims per kind: the event index each is about and whether the operator rejected it."""

    fp: NDArray[np.int64]
    fp_rejected: NDArray[np.bool_]
    fn: NDArray[np.int64]
    fn_rejected: NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Tickets:
    """Helpdesk tickets: priority name, domain index, opened and first response (UNIX s)."""

    priority: list[str]
    domain: NDArray[np.int64]
    opened: NDArray[np.float64]
    responded: NDArray[np.float64]


def claims(run: Run) -> Claims:
    """Wrongly blocked ham claimed as false positives, delivered spam reported as negatives."""
    rng = np.random.default_rng([run.scenario.seed, 1])
    c = run.scenario.claims
    label = run.mix.label[run.arrivals.message]
    blocked_ham = np.flatnonzero((label == HAM) & np.isin(run.outcome, BLOCKED))
    passed_spam = np.flatnonzero((label == SPAM) & (run.outcome == DELIVERED))
    fp = blocked_ham[rng.random(len(blocked_ham)) < c.fp_claim_share]
    fn = passed_spam[rng.random(len(passed_spam)) < c.fn_report_share]
    return Claims(
        fp=fp,
        fp_rejected=rng.random(len(fp)) < c.fp_reject_share,
        fn=fn,
        fn_rejected=rng.random(len(fn)) < c.fn_reject_share,
    )


def tickets(run: Run) -> Tickets:
    """Each priority's tickets spread over the month, answered after a log-normal time."""
    rng = np.random.default_rng([run.scenario.seed, 2])
    names: list[str] = []
    opened, responded, domain = [], [], []
    for p in run.scenario.helpdesk.priorities:
        at = run.start + rng.random(p.tickets) * (run.end - run.start)
        hours = p.median_hours * np.exp(p.spread * rng.standard_normal(p.tickets))
        names += [p.name] * p.tickets
        opened.append(at)
        responded.append(at + hours * 3600.0)
        domain.append(rng.integers(0, len(run.domains), p.tickets))
    order = np.argsort(np.concatenate(opened or [np.empty(0)]), kind="stable")
    return Tickets(
        priority=[names[i] for i in order.tolist()],
        domain=np.concatenate(domain or [np.empty(0, np.int64)])[order],
        opened=np.concatenate(opened or [np.empty(0)])[order],
        responded=np.concatenate(responded or [np.empty(0)])[order],
    )
