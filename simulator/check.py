"""check.json: the monitor's report beside the ground truth, figure by figure, equal or not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

FIGURES: dict[str, tuple[str, ...]] = {
    "events": ("received", "measured", "excluded", "excluded_from_latency"),
    "latency": (
        "delivered", "within_limit", "undelivered", "measured", "met", "quantiles_seconds.p50",
        "quantiles_seconds.p95", "quantiles_seconds.p99", "max_seconds", "periods",
        "periods_within_limit",
    ),
    "false_positives": ("errors", "traffic", "measured"),
    "false_negatives": ("errors", "traffic", "measured"),
    "virus": ("detected_not_stopped",),
    "availability": ("samples", "up", "excluded_samples", "measured"),
    "virus_release": ("within", "late", "pending"),
}  # fmt: skip
"""Per level, the figures compared; counts and shares must be equal, not close."""


def _get(data: Any, path: str) -> Any:
    for key in path.split("."):
        data = data[key]
    return data


def _pairs(report: dict[str, Any], truth: dict[str, Any]) -> Iterator[tuple[str, str, Any, Any]]:
    for level, figures in FIGURES.items():
        mine = report["events"] if level == "events" else report["levels"][level]
        known = truth["events"] if level == "events" else truth["levels"][level]
        for figure in figures:
            yield level, figure, _get(mine, figure), _get(known, figure)
    priorities = report["levels"]["helpdesk"]["priorities"]
    for name, row in priorities.items():
        known = truth["levels"]["helpdesk"].get(name, {"within": 0, "late": 0, "pending": 0})
        for figure in ("within", "late", "pending"):
            yield f"helpdesk {name}", figure, row[figure], known[figure]


def compare(report: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    """Every compared figure, whether it agrees, and per level whether all of it does."""
    rows = [
        {"level": level, "figure": figure, "monitor": a, "truth": b, "agree": a == b}
        for level, figure, a, b in _pairs(report, truth)
    ]
    levels: dict[str, bool] = {}
    for row in rows:
        levels[row["level"]] = levels.get(row["level"], True) and row["agree"]
    return {
        "scenario": truth["scenario"],
        "month": truth["month"],
        "agree": all(levels.values()),
        "levels": levels,
        "figures": rows,
    }
