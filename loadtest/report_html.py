"""A replay's HTML page: the summary table and plots people can read; the JSON stays in its file.

Latencies span orders of magnitude (a 2 ms SMTP reply, a 2 s round trip
through filtering and delivery), so histograms and CDFs use log axes and
SMTP reply and round trip get a histogram each. A plot over time shows
throughput and round trip per message across the run, where a stall or a
slow start shows up.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from loadtest.replay import ReplayResult
from loadtest.report import rows

BINS = 40
FLOOR_MS = 0.01
"""Log axes cannot show 0: faster values are drawn at this many milliseconds."""


def _log_x(axes: Axes) -> None:
    """A log x axis labelled in plain milliseconds (1, 10, 100), no crowded minor labels."""
    axes.set_xscale("log")
    _plain_log_labels(axes.xaxis)


def _plain_log_labels(axis: Axis) -> None:
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,g}"))
    axis.set_minor_formatter(NullFormatter())


def _log_histogram(axes: Axes, values_ms: Sequence[float], title: str, colour: str) -> None:
    axes.set(title=title, xlabel="ms (log scale)", ylabel="messages")
    if not values_ms:
        axes.text(0.5, 0.5, "no values", ha="center", transform=axes.transAxes)
        return
    values = np.maximum(np.asarray(values_ms), FLOOR_MS)
    low, high = float(values.min()), float(values.max())
    edges: list[float] = (
        np.geomspace(low, high * 1.01, BINS + 1).tolist() if high > low else [low * 0.9, low * 1.1]
    )
    axes.hist(values, bins=edges, color=colour)
    _log_x(axes)


def _cdf(axes: Axes, series: dict[str, list[float]]) -> None:
    axes.set(title="latency CDF", xlabel="ms (log scale)", ylabel="share of messages", ylim=(0, 1))
    drawn = False
    for name, values_ms in series.items():
        if values_ms:
            ordered = np.sort(np.maximum(np.asarray(values_ms), FLOOR_MS))
            axes.plot(ordered, np.arange(1, len(ordered) + 1) / len(ordered), label=name)
            drawn = True
    if drawn:
        _log_x(axes)
        axes.legend()
    else:
        axes.text(0.5, 0.5, "no message accepted", ha="center", transform=axes.transAxes)


def _over_time(axes: Axes, result: ReplayResult) -> None:
    """Sent and delivered per second across the run, and each message's round trip."""
    axes.set(title="over the run", xlabel="seconds since the first message")
    records = result.records
    if not records:
        axes.text(0.5, 0.5, "nothing sent", ha="center", transform=axes.transAxes)
        return
    start = min(r.started for r in records)
    arrived = [r for r in records if r.arrived is not None]
    end = max([r.replied for r in records] + [r.arrived for r in arrived if r.arrived is not None])
    edges = np.arange(0.0, max(end - start, 1.0) + 1.0, 1.0)
    sent, _ = np.histogram([r.started - start for r in records], bins=edges)
    delivered, _ = np.histogram([r.arrived - start for r in arrived if r.arrived], bins=edges)
    axes.step(edges[:-1], sent, where="post", label="sent per second")
    axes.step(edges[:-1], delivered, where="post", label="delivered per second")
    axes.set_ylabel("messages per second")
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper left")
    if arrived:
        latency = axes.twinx()
        latency.scatter(
            [r.started - start for r in arrived],
            [max((r.arrived or r.started) - r.started, FLOOR_MS / 1000) * 1000 for r in arrived],
            s=4,
            color="tab:red",
            alpha=0.5,
        )
        latency.set_yscale("log")
        _plain_log_labels(latency.yaxis)
        latency.set_ylabel("round trip, ms (log; dots)")


def plot(result: ReplayResult) -> str:
    """Histograms, CDF and the run over time as one base64 PNG."""
    accepted = [r for r in result.records if r.accepted]
    smtp = [(r.replied - r.started) * 1000 for r in accepted]
    trip = [(r.arrived - r.started) * 1000 for r in accepted if r.arrived is not None]
    figure = Figure(figsize=(12, 8), layout="constrained")
    (reply_axes, trip_axes), (cdf_axes, time_axes) = figure.subplots(2, 2)
    _log_histogram(reply_axes, smtp, "SMTP reply (first byte to final reply)", "tab:blue")
    _log_histogram(trip_axes, trip, "round trip (first byte to arrival at the sink)", "tab:orange")
    _cdf(cdf_axes, {"SMTP reply": smtp, "round trip": trip})
    _over_time(time_axes, result)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def write_html(
    summary: dict[str, Any], result: ReplayResult, path: Path, json_path: Path | None = None
) -> None:
    """One self-contained page: the summary table, the plots, a link to the JSON report."""
    table = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows(summary)
    )
    run = summary["run"]
    title = html.escape(f"Mailmoat replay {run['id']}")
    facts = html.escape(
        f"{run['corpus']} -> {run['target']}, {run['mode']} loop, "
        f"{run['concurrency']} sessions, {summary['when']}"
        if "corpus" in run
        else f"-> {run['target']}, {run['mode']} loop, {summary['when']}"
    )
    link = (
        f'<p>Every figure as JSON: <a href="{html.escape(json_path.name)}">'
        f"{html.escape(json_path.name)}</a></p>"
        if json_path is not None
        else ""
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}}td{{padding:2px 12px}}
td:last-child{{text-align:right;font-variant-numeric:tabular-nums}}
tr:nth-child(even){{background:#f3f3f3}}</style></head>
<body><h1>{title}</h1><p>{facts}</p><table>{table}</table>{link}
<img alt="latency histograms, CDF and the run over time" src="data:image/png;base64,{plot(result)}">
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
