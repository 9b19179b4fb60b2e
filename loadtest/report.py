"""A replay's totals as JSON, a terminal table and an HTML page: read at a glance, not raw records.

Latencies are in milliseconds: ``smtp`` from a transaction's first byte to
the gateway's final reply, ``round_trip`` from the same first byte to the
arrival at the sink. FP/FN count accepted, labelled messages only: ham the
gateway held is a false positive, spam it delivered a false negative
(``hm%``/``sm%`` of the ham/spam accepted); refusals are counted apart,
since a refused message was never judged.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from loadtest.replay import Record, ReplayResult

EXAMPLES = 10  # message names listed per kind of misjudgement


def latency_ms(seconds: Sequence[float]) -> dict[str, float] | None:
    """p50/p95/p99/max/mean of durations in seconds, as milliseconds; None for no values."""
    if not seconds:
        return None
    values = np.asarray(seconds) * 1000.0
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "count": len(values),
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "max": round(float(values.max()), 3),
        "mean": round(float(values.mean()), 3),
    }


def _error_key(record: Record) -> str:
    """A reply code, or the kind of failure when there was no reply."""
    return str(record.code) if record.code else record.text.partition(":")[0]


def _classification(result: ReplayResult, accepted: list[Record]) -> dict[str, Any] | None:
    labels = [result.messages[r.message].label for r in result.records]
    if result.config.sink is None or not any(labels):
        return None
    ham = [r for r in accepted if result.messages[r.message].label == "ham"]
    spam = [r for r in accepted if result.messages[r.message].label == "spam"]
    fp = [r for r in ham if r.arrived is None]
    fn = [r for r in spam if r.arrived is not None]
    refused = Counter(
        label for r, label in zip(result.records, labels, strict=True) if not r.accepted
    )
    return {
        "ham": len(ham),
        "spam": len(spam),
        "unlabelled": sum(1 for r in accepted if result.messages[r.message].label is None),
        "false_positives": len(fp),
        "false_negatives": len(fn),
        "false_negatives_by_action": dict(Counter(r.action or "none" for r in fn).most_common()),
        "hm_percent": round(100.0 * len(fp) / len(ham), 4) if ham else None,
        "sm_percent": round(100.0 * len(fn) / len(spam), 4) if spam else None,
        "refused": {"ham": refused["ham"], "spam": refused["spam"]},
        "false_positive_examples": sorted({result.messages[r.message].name for r in fp})[:EXAMPLES],
        "false_negative_examples": sorted({result.messages[r.message].name for r in fn})[:EXAMPLES],
    }


def _schedule(result: ReplayResult) -> dict[str, Any] | None:
    config = result.config
    if config.rate is None:
        return None
    starts = sorted(r.started for r in result.records)
    span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
    return {
        "rate": config.rate,
        "arrivals": config.arrivals,
        "achieved_rate": round((len(starts) - 1) / span, 2) if span > 0 else None,
        "lag_ms": latency_ms(
            [r.started - r.scheduled for r in result.records if r.scheduled is not None]
        ),
    }


def summarize(result: ReplayResult, **run_info: Any) -> dict[str, Any]:
    """The JSON report; ``run_info`` (corpus path, corpus errors, ...) goes into ``run``."""
    config, records = result.config, result.records
    accepted = [r for r in records if r.accepted]
    delivered = [r for r in accepted if r.arrived is not None]
    sinking = config.sink is not None
    span = result.finished - result.started
    failed = [r for r in records if not r.accepted]
    sizes = [result.messages[r.message].size for r in records]
    return {
        "report": "replay",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "run": {
            "id": config.run,
            "target": f"{config.target[0]}:{config.target[1]}",
            "sink": f"{config.sink[0]}:{config.sink[1]}" if config.sink else None,
            "mode": "open" if config.rate is not None else "closed",
            "concurrency": config.concurrency,
            "pipelining": config.pipelining,
            "count": config.bounds.count,
            "duration": config.bounds.duration,
            "seed": config.seed,
            "corpus_messages": len(result.messages),
            "mean_message_bytes": round(sum(sizes) / len(sizes)) if sizes else 0,
            "stopped_early": result.stopped,
            **run_info,
        },
        "counts": {
            "sent": len(records),
            "accepted": len(accepted),
            "refused": len(failed),
            "delivered": len(delivered) if sinking else None,
            "held": len(accepted) - len(delivered) if sinking else None,
            "recipients_refused": sum(r.refused_rcpts for r in accepted),
        },
        "throughput": {
            "seconds": round(span, 3),
            "sent_per_second": round(len(records) / span, 1) if span > 0 else None,
            "accepted_per_second": round(len(accepted) / span, 1) if span > 0 else None,
        },
        "latency_ms": {
            "smtp": latency_ms([r.replied - r.started for r in accepted]),
            "round_trip": latency_ms(
                [r.arrived - r.started for r in delivered if r.arrived is not None]
            ),
        },
        "schedule": _schedule(result),
        "smtp_errors": dict(Counter(_error_key(r) for r in failed).most_common()),
        "error_examples": {_error_key(r): r.text for r in reversed(failed)},
        "classification": _classification(result, accepted),
        "delivered_actions": dict(Counter(r.action or "none" for r in delivered).most_common()),
        "stage_hits": dict(Counter(s for r in delivered for s in r.symbols).most_common()),
        "sink": {
            "drain_seconds": round(result.drained, 3),
            "repeats": result.repeats,
            "untraced": result.untraced,
            "copies": result.copies,
        }
        if sinking
        else None,
    }


def write_json(summary: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n")


def _n(value: float | None) -> str:
    """A count with thousands separators; ``-`` when there is none."""
    return "-" if value is None else f"{value:,.0f}"


def _ms(value: float) -> str:
    """A latency in ms, as precise as it needs to be: 0.42, 12.3, 1,234."""
    if value < 10:
        return f"{value:.2f}"
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The report as (measure, value) pairs for people: the terminal table and the HTML page."""
    counts, speed, lat = summary["counts"], summary["throughput"], summary["latency_ms"]
    out = [
        (
            "sent / accepted / refused",
            f"{_n(counts['sent'])} / {_n(counts['accepted'])} / {_n(counts['refused'])}",
        )
    ]
    if summary["run"]["stopped_early"]:
        out.append(("stopped early", "yes (interrupted)"))
    if counts["delivered"] is not None:
        out.append(("delivered / held", f"{_n(counts['delivered'])} / {_n(counts['held'])}"))
    if (sink := summary["sink"]) is not None and sink.get("copies"):
        out.append(("content-rule copies (not deliveries)", _n(sink["copies"])))
    out.append(("accepted per second", f"{speed['accepted_per_second'] or 0:,.1f}"))
    for name, stats in (("SMTP reply", lat["smtp"]), ("round trip", lat["round_trip"])):
        if stats is not None:
            values = " / ".join(_ms(stats[k]) for k in ("p50", "p95", "p99", "max"))
            out.append((f"{name} p50 / p95 / p99 / max, ms", values))
    if (schedule := summary["schedule"]) is not None and schedule["lag_ms"] is not None:
        out.append(
            (
                f"schedule {schedule['rate']:g}/s {schedule['arrivals']}",
                f"achieved {schedule['achieved_rate'] or 0:,.1f}/s, lag p99 "
                f"{_ms(schedule['lag_ms']['p99'])} ms",
            )
        )
    if (found := summary["classification"]) is not None:
        out.append(("ham / spam accepted", f"{_n(found['ham'])} / {_n(found['spam'])}"))
        out.append(
            (
                "false positives (ham held)",
                f"{_n(found['false_positives'])} ({found['hm_percent'] or 0:.2f}% hm)",
            )
        )
        out.append(
            (
                "false negatives (spam delivered)",
                f"{_n(found['false_negatives'])} ({found['sm_percent'] or 0:.2f}% sm)",
            )
        )
    out += [(f"delivered as {a}", _n(n)) for a, n in summary["delivered_actions"].items()]
    for code, n in summary["smtp_errors"].items():
        why = " ".join(str(summary["error_examples"].get(code, "")).split())
        out.append((f"refused {code}", f"{_n(n)}: {why[:70]}" if why else _n(n)))
    out += [(f"hits {symbol}", _n(n)) for symbol, n in summary["stage_hits"].items()]
    return out


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"replay {summary['run']['id']} -> {summary['run']['target']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in rows(summary):
        table.add_row(key, value)
    return table
