"""Ground truth: every service level worked out from what the simulator generated.

Written from the contract (SPEC 4 and 6), not from ``slamonitor``: it shares
no helper with the monitor and reads no store. It knows each message's true
label, the windows the scenario injected and the claims customers filed, and
judges the month (all domains) with integer arithmetic where it can: an
outbreak period has ``200 * viruses > messages``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulator.customers import Claims, Tickets
from simulator.engine import Run
from simulator.mix import DELIVERED, HAM, VIRUS
from simulator.scenario import ConfigFault, Dos, Maintenance, Suspension
from simulator.watch import Watch

PERIOD = 300.0
LIMIT = 120.0
GRACE = 30 * 86400.0
TELSTRA_HOURS = {"critical": 2.0, "major": 4.0, "minor": 8.0, "information": 24.0}
"""The default helpdesk table (SPEC 6): first response within these hours."""
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
THIRD_PARTY = ("BLACKLIST_DNSBL", "BLACKLIST_URIBL")


@dataclass(frozen=True, slots=True)
class Span:
    start: float
    end: float
    domain: int | None


def _every_level(run: Run) -> list[Span]:
    """Maintenance, suspension and each domain's first 30 days: nothing is measured."""
    s = run.scenario
    spans = []
    for e in s.events:
        if isinstance(e, Maintenance | Suspension):
            lo = s.local(e.start)
            who = run.domains.index(e.domain) if isinstance(e, Suspension) else None
            spans.append(Span(lo, lo + e.seconds, who))
    for d, domain in enumerate(s.domains):
        if domain.started is not None:
            lo = s.local(domain.started)
            spans.append(Span(lo, lo + GRACE, d))
    return spans


def _inside(
    run: Run, spans: list[Span], at: NDArray[np.float64], domain: NDArray[np.int16]
) -> NDArray[np.bool_]:
    hit = np.zeros(len(at), dtype=np.bool_)
    for w in spans:
        mine = (at >= w.start) & (at < w.end)
        hit |= mine if w.domain is None else mine & (domain == w.domain)
    return hit


def _outbreak_periods(
    run: Run, month: NDArray[np.bool_], virus: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Per message: its 5-minute period had more than 1 virus in 200 messages (all domains)."""
    period = ((run.received - run.start) // PERIOD).astype(np.int64)
    where = period[month]
    total = np.bincount(where)
    bad = np.bincount(where[virus[month]], minlength=len(total))
    hot = 200 * bad > total
    out = np.zeros(len(period), dtype=np.bool_)
    out[month] = hot[where]
    return out


def _nearest_rank(sorted_values: NDArray[np.float64], q: float) -> float:
    return float(sorted_values[max(math.ceil(q * len(sorted_values)) - 1, 0)])


def _ms(value: float) -> float:
    """Seconds as the store's readers see a round trip: whole milliseconds, half up."""
    return math.floor(value * 1000 + 0.5) / 1000


def _latency(run: Run, counted: NDArray[np.bool_]) -> dict[str, object]:
    took = run.delivered[counted] - run.received[counted]
    done = ~np.isnan(took)
    values = np.sort(took[done])
    within = int(np.count_nonzero(values <= LIMIT))
    period = ((run.received[counted][done] - run.start) // PERIOD).astype(np.int64)
    counts = np.bincount(period)
    sums = np.bincount(period, weights=took[done])
    used = counts > 0
    good = int(np.count_nonzero(sums[used] / counts[used] <= LIMIT))
    n = len(values)
    return {
        "delivered": n,
        "within_limit": within,
        "undelivered": int(np.count_nonzero(~done)),
        "measured": within / n if n else None,
        "met": None if not n else within / n >= 0.95,
        "quantiles_seconds": {
            k: _ms(_nearest_rank(values, q)) if n else None for k, q in QUANTILES.items()
        },
        "max_seconds": _ms(float(values[-1])) if n else None,
        "periods": int(np.count_nonzero(used)),
        "periods_within_limit": good,
    }


def _fp_exempt(run: Run, message: int, recipients: int) -> bool:
    """The contract's FP exemptions: bulk (over 20 recipients) or a blacklisted sender."""
    if recipients > 20:
        return True
    for hit in json.loads(run.mix.hits[message]):
        if hit["symbol"] == "BLACKLIST_PRIVATE" and "global blacklist" not in hit["reason"]:
            return True
        if hit["symbol"] in THIRD_PARTY:
            return True
    return False


def _errors(
    run: Run, idx: NDArray[np.int64], rejected: NDArray[np.bool_], ok: NDArray[np.bool_], fp: bool
) -> int:
    count = 0
    for i, no in zip(idx.tolist(), rejected.tolist(), strict=True):
        if no or not ok[i]:
            continue
        if fp and _fp_exempt(run, int(run.arrivals.message[i]), int(run.arrivals.recipients[i])):
            continue
        count += 1
    return count


def _helpdesk(desk: Tickets, now: float) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for p, opened, answered in zip(
        desk.priority, desk.opened.tolist(), desk.responded.tolist(), strict=True
    ):
        due = opened + TELSTRA_HOURS[p.lower()] * 3600.0
        row = out.setdefault(p, {"within": 0, "late": 0, "pending": 0})
        if answered <= now:
            row["within" if answered <= due else "late"] += 1
        else:
            row["pending" if now <= due else "late"] += 1
    return out


def truth(run: Run, found: Claims, desk: Tickets, seen: Watch, now: float) -> dict[str, object]:
    """Every level for the whole month, from the simulator's own records."""
    month = (run.received >= run.start) & (run.received < run.end)
    label = run.mix.label[run.arrivals.message]
    virus = label == VIRUS
    every = month & _inside(run, _every_level(run), run.received, run.arrivals.domain)
    s = run.scenario
    # SPEC 4: latency is not applied during a denial of service, nor during configuration
    # faults on the customer's side (that domain only).
    latency_only = [
        Span(
            s.local(e.start),
            s.local(e.start) + e.seconds,
            run.domains.index(e.domain) if isinstance(e, ConfigFault) else None,
        )
        for e in s.events
        if isinstance(e, Dos | ConfigFault)
    ]
    spared = _inside(run, latency_only, run.received, run.arrivals.domain)
    some = every | (month & (_outbreak_periods(run, month, virus) | spared))
    measured = month & ~every
    global_every = [w for w in _every_level(run) if w.domain is None]
    kept = ~_inside(run, global_every, seen.at, np.zeros(len(seen.at), np.int16))
    samples = int(np.count_nonzero(kept))
    up = int(np.count_nonzero(kept & seen.up))
    fp_errors = _errors(run, found.fp, found.fp_rejected, measured, fp=True)
    fn_errors = _errors(run, found.fn, found.fn_rejected, measured, fp=False)
    traffic = int(np.count_nonzero(measured))
    spam_traffic = int(np.count_nonzero(measured & ~virus))
    escaped = int(np.count_nonzero(month & virus & (run.outcome == DELIVERED)))
    return {
        "scenario": s.name,
        "month": s.month,
        "seed": s.seed,
        "messages": {
            "generated": len(run),
            "received_in_month": int(np.count_nonzero(month)),
            "ham": int(np.count_nonzero(month & (label == HAM))),
            "viruses": int(np.count_nonzero(month & virus)),
        },
        "events": {
            "received": int(np.count_nonzero(month)),
            "measured": traffic,
            "excluded": int(np.count_nonzero(every)),
            "excluded_from_latency": int(np.count_nonzero(some)),
        },
        "levels": {
            "latency": _latency(run, month & ~some),
            "false_positives": {"errors": fp_errors, "traffic": traffic,
                                "measured": fp_errors / traffic if traffic else None},
            "false_negatives": {"errors": fn_errors, "traffic": spam_traffic,
                                "measured": fn_errors / spam_traffic if spam_traffic else None},
            "virus": {"detected_not_stopped": escaped},
            "availability": {"samples": samples, "up": up,
                             "excluded_samples": len(seen.at) - samples,
                             "measured": up / samples if samples else None},
            "helpdesk": _helpdesk(desk, now),
            "virus_release": {"within": 0, "late": 0, "pending": 0},
        },
    }  # fmt: skip
