"""The monthly report as one self-contained HTML file: tables plus PNG plots inlined as base64."""

from __future__ import annotations

import base64
import html
import io
import json

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import NDArray

from slamonitor.latency import LIMIT
from slamonitor.report import Report

MAX_QUEUE_DOMAINS = 10
"""Domains drawn in the queue plot, longest queues first; more would be unreadable."""

_STYLE = """body{font-family:sans-serif;margin:2em;max-width:70em}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.met{color:#060}.missed{color:#b00;font-weight:bold}.none{color:#777}img{max-width:100%}"""


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _dates(times: list[float] | NDArray[np.float64]) -> NDArray[np.datetime64]:
    seconds = np.asarray(times, dtype=np.float64).astype(np.int64)
    return seconds.astype("datetime64[s]")


def latency_plot(report: Report) -> str:
    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot()
    values = report.latencies
    if values.size:
        top = max(float(values.max()), LIMIT * 1.5)
        counts, edges = np.histogram(values, bins=np.linspace(0.0, top, 121))
        ax.stairs(counts, edges, fill=True, alpha=0.7)
        ax.set_yscale("log")
    ax.axvline(LIMIT, color="red", linestyle="--", label="2-minute target")
    ax.set_xlabel("round trip (s)")
    ax.set_ylabel("messages")
    ax.set_title("Latency distribution")
    ax.legend()
    return _png(fig)


def periods_plot(report: Report) -> str:
    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot()
    ax.plot(_dates(report.period_starts), report.period_averages, linewidth=0.7)
    ax.axhline(LIMIT, color="red", linestyle="--", label="2-minute target")
    ax.set_ylabel("average round trip (s)")
    ax.set_title("5-minute averages (UTC)")
    ax.legend()
    fig.autofmt_xdate()
    return _png(fig)


def queue_plot(report: Report) -> str:
    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot()
    busiest = sorted(report.queues.items(), key=lambda kv: -max(kv[1][1]))[:MAX_QUEUE_DOMAINS]
    for domain, (times, lengths) in busiest:
        ax.step(_dates(times), lengths, where="post", label=domain)
    ax.set_ylabel("messages queued")
    ax.set_title("Queue length by domain (UTC)")
    if busiest:
        ax.legend(fontsize="small")
    fig.autofmt_xdate()
    return _png(fig)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return html.escape(json.dumps(value))
    return html.escape(str(value))


def _verdict(met: object) -> str:
    if met is None:
        return '<span class="none">not measured</span>'
    return '<span class="met">met</span>' if met else '<span class="missed">missed</span>'


def _level_rows(levels: dict[str, dict[str, object]]) -> list[tuple[str, dict[str, object]]]:
    rows = []
    for name, level in levels.items():
        if name == "helpdesk":
            priorities = level["priorities"]
            assert isinstance(priorities, dict)
            rows += [(f"helpdesk {p} ({level['table']})", v) for p, v in priorities.items()]
            plans = level.get("plans", {})
            assert isinstance(plans, dict)
            for table, by_priority in plans.items():
                rows += [(f"helpdesk {p} ({table})", v) for p, v in by_priority.items()]
        else:
            rows.append((name, level))
    return rows


def render(report: Report) -> str:
    data = report.data
    levels = data["levels"]
    assert isinstance(levels, dict)
    title = f"Mailmoat SLA report {data['month']} ({data['domain'] or 'all domains'})"
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"]
    out.append(f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>")
    out.append(
        f"<p>Time zone {_cell(data['time_zone'])}; {_cell(data['start'])} to"
        f" {_cell(data['end'])}; generated {_cell(data['generated_at'])}."
        f" Events: {_cell(data['events'])}</p>"
    )
    out.append(
        "<h2>Service levels</h2><table><tr><th>level</th><th>target</th><th>measured</th>"
        "<th>result</th><th>details</th></tr>"
    )
    for name, level in _level_rows(levels):
        details = {k: v for k, v in level.items() if k not in ("target", "measured", "met")}
        out.append(
            f"<tr><td>{_cell(name)}</td><td>{_cell(level.get('target'))}</td>"
            f"<td>{_cell(level.get('measured'))}</td><td>{_verdict(level.get('met'))}</td>"
            f"<td>{_cell(details)}</td></tr>"
        )
    out.append(
        "</table><h2>Exclusions</h2><table><tr><th>kind</th><th>domain</th><th>start</th>"
        "<th>end</th><th>levels</th><th>events</th><th>reason</th></tr>"
    )
    exclusions = data["exclusions"]
    assert isinstance(exclusions, list)
    for w in exclusions:
        cells = (
            w["kind"],
            w["domain"] or "all",
            w["start"],
            w["end"],
            w["levels"],
            w["events"],
            w["reason"],
        )
        out.append("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in cells) + "</tr>")
    out.append(
        "</table><h2>Registered users and usage</h2><table><tr><th>domain</th>"
        "<th>registered</th><th>scanned recipients</th><th>bands</th><th>exceeds</th></tr>"
    )
    usage = data["usage"]
    assert isinstance(usage, dict)
    for domain, u in usage.items():
        bands = f"{u['registered_band']} / {u['actual_band']}"
        row = (domain, u["registered_users"], u["scanned_recipients"], bands, u["exceeds"])
        out.append("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>")
    out.append("</table><h2>Plots</h2>")
    for alt, png in (
        ("latency distribution", latency_plot(report)),
        ("5-minute averages", periods_plot(report)),
        ("queue length", queue_plot(report)),
    ):
        out.append(f'<p><img alt="{alt}" src="data:image/png;base64,{png}"></p>')
    out.append(f"<h2>Alerts</h2><pre>{_cell(data['alerts'])}</pre></body></html>")
    return "\n".join(out)
