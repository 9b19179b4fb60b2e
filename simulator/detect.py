"""alerts.json: each alert's firing intervals beside the injected events, and time to detect.

An event is detected by the first alert that starts firing between its start
and an hour after its end; the time to detect is from the event's start.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from simulator.scenario import Scenario

AFTER = 3600.0
COSTS = {
    "gateway_outage": "availability",
    "downstream_outage": "latency",
    "config_fault": "none (the customer's fault: latency exempt)",
    "dnsbl_timeout": "latency",
    "quarantine_full": "none (spam is tagged through; viruses wait, never delivered)",
    "outbreak": "virus (latency is excluded above 1:200)",
    "dos": "latency (excluded when declared)",
}
"""The level an event can cost; the others (maintenance, suspension, campaigns) cost none."""


def iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


def detection(s: Scenario, fired: list[dict[str, Any]]) -> dict[str, Any]:
    """The alerts, the events with what caught them, and the pages."""
    events = []
    for i, e in enumerate(s.events):
        start = s.local(e.start)
        end = start + e.seconds
        caught = [a for a in fired if start <= a["start"] < end + AFTER]
        first = min(caught, key=lambda a: a["start"], default=None)
        events.append(
            {
                "index": i,
                "kind": e.kind,
                "domain": getattr(e, "domain", None),
                "start": iso(start),
                "end": iso(end),
                "costs": COSTS.get(e.kind),
                "alerts": sorted({a["alert"] for a in caught}),
                "detected_by": first and first["alert"],
                "time_to_detect_seconds": first and first["start"] - start,
            }
        )
    pages = [a for a in fired if a["labels"].get("severity") == "page"]
    return {
        "scenario": s.name,
        "month": s.month,
        "alerts": [
            a | {"start": iso(a["start"]), "end": iso(a["end"]), "seconds": a["end"] - a["start"]}
            for a in fired
        ],
        "events": events,
        "pages": len(pages),
        "undetected": [e["index"] for e in events if e["costs"] and e["detected_by"] is None],
    }
