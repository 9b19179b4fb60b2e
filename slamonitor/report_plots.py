"""The SLA report's plots as base64 PNGs: latency distribution, 5-minute averages, queues.

Latencies run from milliseconds to hours, so the histogram has a log axis
from 1 ms (a linear 0-180 s axis hid every sub-second message in its first
bin). A plot with nothing to draw says so and keeps the month as its axis,
instead of an empty frame that matplotlib scales to years.
"""

from __future__ import annotations

import base64
import io
from datetime import datetime

import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from numpy.typing import NDArray

from slamonitor.latency import LIMIT
from slamonitor.report import Report

MAX_QUEUE_DOMAINS = 10
"""Domains drawn in the queue plot, longest queues first; more would be unreadable."""
FLOOR_SECONDS = 0.001
BINS = 60


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _dates(times: list[float] | NDArray[np.float64]) -> NDArray[np.datetime64]:
    seconds = np.asarray(times, dtype=np.float64).astype(np.int64)
    return seconds.astype("datetime64[s]")


def _month_axis(ax: Axes, report: Report) -> None:
    """Dates along x, limited to the report's month (an empty plot would span years)."""
    start, end = (_utc(str(report.data[key])) for key in ("start", "end"))
    # matplotlib converts datetimes on date axes; its stubs only name floats.
    ax.set_xlim(start, end)  # type: ignore[arg-type]
    ax.figure.autofmt_xdate()


def _utc(iso: str) -> datetime:
    """A report bound ("2026-11-01T00:00:00Z") as a naive UTC datetime, as numpy dates are."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).replace(tzinfo=None)


def _nothing(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_yticks([])


def _seconds(value: float, _: object) -> str:
    if value < 1:
        return f"{value * 1000:g} ms"
    return f"{value:g} s" if value < 120 else f"{value / 60:g} min"


def _duration_labels(axis: Axis) -> None:
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 3.0)))
    axis.set_major_formatter(FuncFormatter(_seconds))
    axis.set_minor_formatter(NullFormatter())


def latency_plot(report: Report) -> str:
    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot()
    ax.set_title("Latency distribution (log scale)")
    ax.set_xlabel("round trip")
    ax.set_ylabel("messages")
    values = np.maximum(report.latencies, FLOOR_SECONDS)
    if values.size:
        top = max(float(values.max()), LIMIT * 1.5)
        edges = np.geomspace(min(float(values.min()), 0.1), top * 1.01, BINS + 1)
        counts, _ = np.histogram(values, bins=edges)
        ax.stairs(counts, edges, fill=True, alpha=0.7)
        ax.set_xscale("log")
        _duration_labels(ax.xaxis)
        ax.axvline(LIMIT, color="red", linestyle="--", label="2-minute target")
        ax.legend()
    else:
        _nothing(ax, "no delivered message measured this month")
    return _png(fig)


def periods_plot(report: Report) -> str:
    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot()
    ax.set_title("5-minute average round trip (UTC)")
    ax.set_ylabel("average round trip")
    if report.period_starts.size:
        averages = np.maximum(report.period_averages, FLOOR_SECONDS)
        ax.plot(_dates(report.period_starts), averages, linewidth=0.7, marker=".")
        ax.axhline(LIMIT, color="red", linestyle="--", label="2-minute target")
        ax.set_yscale("log")  # sub-second averages and a 120 s target on one axis
        _duration_labels(ax.yaxis)
        ax.legend()
    else:
        _nothing(ax, "no 5-minute period measured this month")
    _month_axis(ax, report)
    return _png(fig)


def queue_plot(report: Report) -> str:
    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot()
    ax.set_title("Queue length by domain (UTC)")
    ax.set_ylabel("messages queued")
    busiest = sorted(report.queues.items(), key=lambda kv: -max(kv[1][1]))[:MAX_QUEUE_DOMAINS]
    for domain, (times, lengths) in busiest:
        ax.step(_dates(times), lengths, where="post", label=domain)
    if busiest:
        ax.legend(fontsize="small")
    else:
        _nothing(ax, "no queue samples this month")
    _month_axis(ax, report)
    return _png(fig)
