"""report.html: the simulated month in three plots and two tables, self-contained.

Traffic per hour, queue per domain, 5-minute latency averages against the
2-minute line; injected events shaded, alerts marked. Numbers are shown as
people read them (percentages, thousands separators), not as raw floats.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import NDArray

from simulator.engine import Run
from simulator.mix import LABELS
from simulator.watch import Watch

PERIOD = 300.0
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
    "td.n{text-align:right}.no{color:#b00;font-weight:bold}.yes{color:#070}"
)


def _days(run: Run, times: NDArray[np.float64]) -> NDArray[np.float64]:
    """Times as days of the month (1.0 is the first midnight), the plots' x axis."""
    days: NDArray[np.float64] = 1.0 + (times - run.start) / 86400.0
    return days


def _shade(ax: Axes, run: Run, fired: list[dict[str, Any]]) -> None:
    s = run.scenario
    for e in s.events:
        lo = s.local(e.start)
        first, last = _days(run, np.array([lo, lo + e.seconds])).tolist()
        ax.axvspan(first, last, color="orange", alpha=0.25)
    for a in fired:
        ax.axvline(float(_days(run, np.array([a["start"]]))[0]), color="red", lw=0.8, ls="--")
    ax.set_xlabel(f"day of {run.scenario.month}")
    ax.set_xlim(1.0, 1.0 + (run.end - run.start) / 86400.0)


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _plots(run: Run, seen: Watch, fired: list[dict[str, Any]]) -> list[str]:
    edges = np.arange(run.start, run.end + 3600.0, 3600.0)
    label = run.mix.label[run.arrivals.message]
    fig, ax = plt.subplots(figsize=(12, 3))
    counts = [np.histogram(run.received[label == k], edges)[0] for k in range(len(LABELS))]
    ax.stackplot(_days(run, edges[:-1]), counts, labels=LABELS, step="post")
    ax.set_ylabel("messages per hour")
    ax.legend(loc="upper right")
    _shade(ax, run, fired)
    plots = [_png(fig)]
    fig, ax = plt.subplots(figsize=(12, 3))
    for d, name in enumerate(run.domains):
        ax.plot(_days(run, seen.at), seen.queues[d], lw=0.8, label=name)
    ax.set_ylabel("queued for delivery")
    ax.legend(loc="upper right", fontsize="small", ncol=4)
    _shade(ax, run, fired)
    plots.append(_png(fig))
    month = (run.received >= run.start) & (run.received < run.end) & ~np.isnan(run.delivered)
    period = ((run.received[month] - run.start) // PERIOD).astype(np.int64)
    took = run.delivered[month] - run.received[month]
    n = np.bincount(period)
    used = np.flatnonzero(n)
    mean = np.bincount(period, weights=took)[used] / n[used]
    fig, ax = plt.subplots(figsize=(12, 3))
    starts = (run.start + used * PERIOD).astype(np.float64)
    ax.plot(_days(run, starts), mean, lw=0.6, label="5-minute average")
    ax.axhline(120.0, color="black", ls=":", label="2 minutes")
    ax.set_yscale("log")
    ax.set_ylabel("round trip (s)")
    ax.legend(loc="upper right")
    _shade(ax, run, fired)
    plots.append(_png(fig))
    return plots


def _shown(value: Any, figure: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and figure == "measured":
        return f"{value:.4%}"
    if isinstance(value, float):
        return f"{value:,.3f} s"
    return f"{value:,}" if isinstance(value, int) else html.escape(str(value))


def _event_row(e: dict[str, Any]) -> str:
    ttd = e["time_to_detect_seconds"]
    return (
        f"<tr><td>{e['kind']}</td><td>{e['domain'] or 'all'}</td><td>{e['start']}</td>"
        f"<td>{e['end']}</td><td>{e['costs'] or '-'}</td><td>{e['detected_by'] or '-'}</td>"
        f"<td class=n>{'-' if ttd is None else f'{ttd / 60:,.1f} min'}</td></tr>"
    )


def render(
    run: Run,
    seen: Watch,
    check: dict[str, Any],
    alerts: dict[str, Any] | None,
    fired: list[dict[str, Any]],
) -> str:
    """The page; ``alerts`` is alerts.json (None: not evaluated), ``fired`` its raw intervals."""
    s = run.scenario
    rows = "".join(
        f"<tr><td>{html.escape(f['level'])}</td><td>{html.escape(f['figure'])}</td>"
        f"<td class=n>{_shown(f['monitor'], f['figure'])}</td>"
        f"<td class=n>{_shown(f['truth'], f['figure'])}</td>"
        + ("<td class=yes>equal</td></tr>" if f["agree"] else "<td class=no>DIFFERENT</td></tr>")
        for f in check["figures"]
    )
    detected = "" if alerts is None else "".join(_event_row(e) for e in alerts["events"])
    plots = "".join(f"<p>{p}</p>" for p in _plots(run, seen, fired))
    verdict = "agree on every level" if check["agree"] else "DISAGREE: see check.json"
    return (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(s.name)}</title>"
        f"<style>{STYLE}</style><h1>Simulated month {s.month}: {html.escape(s.name)}</h1>"
        f"<p>{html.escape(s.description)}. {len(run):,} messages to {len(run.domains)} domains; "
        f"monitor and ground truth {verdict}.</p>{plots}"
        "<h2>Events and detection</h2><table><tr><th>event</th><th>domain</th><th>start</th>"
        "<th>end</th><th>costs</th><th>detected by</th><th>time to detect</th></tr>"
        f"{detected}</table>"
        "<h2>Service levels: monitor vs truth</h2><table><tr><th>level</th><th>figure</th>"
        f"<th>monitor</th><th>truth</th><th></th></tr>{rows}</table>"
    )
