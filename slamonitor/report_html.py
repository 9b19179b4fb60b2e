"""The monthly report as one self-contained HTML file: readable tables plus inlined PNG plots.

Numbers are written for people: shares as percentages with the precision
they need (0.0004%, 95%), counts with separators, seconds as durations,
"not measured" instead of ``None``. Each level's details are one sentence,
not a JSON dump; alerts are a table. The JSON report keeps every figure.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from slamonitor.report import Report
from slamonitor.report_plots import latency_plot, periods_plot, queue_plot

_STYLE = """body{font-family:sans-serif;margin:2em;max-width:70em}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.met{color:#060}.missed{color:#b00;font-weight:bold}.none{color:#777}img{max-width:100%}"""

Level = Mapping[str, object]


def share(value: object) -> str:
    """A ratio as a percentage: 95%, 99.9%, 0.0004%, 0.016%; "not measured" for None."""
    if value is None:
        return "not measured"
    if not isinstance(value, int | float):
        return str(value)
    pct = 100.0 * value
    if pct == 0 or pct >= 1:
        return f"{pct:.2f}".rstrip("0").rstrip(".") + "%"
    return f"{pct:.2g}%"


def count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def seconds(value: object) -> str:
    """A duration: 350 ms, 4.2 s, 3.5 min, 2.1 h; "-" for None."""
    if not isinstance(value, int | float):
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.3g} s"
    return f"{value / 60:.3g} min" if value < 7200 else f"{value / 3600:.3g} h"


def _latency(level: Level) -> str:
    q = level.get("quantiles_seconds")
    quantiles = ", ".join(f"{k} {seconds(v)}" for k, v in q.items()) if isinstance(q, dict) else ""
    return (
        f"{count(level['within_limit'])} of {count(level['delivered'])} delivered within "
        f"{seconds(level['limit_seconds'])}; {count(level['undelivered'])} undelivered; "
        f"{quantiles}, max {seconds(level['max_seconds'])}; 5-minute periods within the "
        f"limit: {count(level['periods_within_limit'])} of {count(level['periods'])}"
    )


def _accuracy(level: Level) -> str:
    excluded = level.get("excluded")
    shown = "yes" if level["target_shown_at_confidence"] else "no"
    return (
        f"{count(level['errors'])} errors in {count(level['traffic'])} messages; "
        f"{share(level['confidence'])} upper bound {share(level['upper_bound'])}; "
        f"target shown at that confidence: {shown} (zero errors would need "
        f"{count(level['messages_needed_with_zero_errors'])} messages)"
        + (f"; {len(excluded)} excluded" if isinstance(excluded, list) and excluded else "")
    )


def _availability(level: Level) -> str:
    return (
        f"{count(level['up'])} of {count(level['samples'])} probes up; "
        f"{count(level['missing_samples'])} missing (gateway down) counted as down; "
        f"{count(level['excluded_samples'])} in excluded windows"
    )


def _cases(level: Level) -> str:
    hours = level.get("business_hours")
    within = f"{count(level['within'])} in time, {count(level['late'])} late, "
    return (
        within
        + f"{count(level['pending'])} pending"
        + (f" ({hours:g} business hours)" if isinstance(hours, int | float) else "")
    )


def _rows(levels: Mapping[str, Level]) -> list[tuple[str, str, str, str, str]]:
    """(level, target, measured, result, details) for every level, helpdesk per priority."""
    out: list[tuple[str, str, str, str, str]] = []
    for name, level in levels.items():
        if name == "helpdesk":
            priorities = level["priorities"]
            assert isinstance(priorities, dict)
            plans = level.get("plans", {})
            assert isinstance(plans, dict)
            tables = [(str(level["table"]), priorities), *plans.items()]
            for table, by_priority in tables:
                for priority, values in by_priority.items():
                    out.append((f"helpdesk {priority} ({table})", share(values["target"]),
                                share(values["measured"]), _verdict(values["met"]),
                                _cases(values)))  # fmt: skip
        elif name == "virus":
            escaped = level["detected_not_stopped"]
            result = (
                '<span class="none">nothing to notify</span>'
                if escaped == 0
                else f'<span class="missed">notify: {count(escaped)}</span>'
            )
            out.append((name, str(level["target"]), f"{count(escaped)} detected but delivered",
                        result, ""))  # fmt: skip
        else:
            details = {
                "latency": _latency,
                "false_positives": _accuracy,
                "false_negatives": _accuracy,
                "availability": _availability,
                "virus_release": _cases,
            }[name](level)
            out.append((name.replace("_", " "), share(level["target"]),
                        share(level["measured"]), _verdict(level["met"]), details))  # fmt: skip
    return out


def _verdict(met: object) -> str:
    if met is None:
        return '<span class="none">not measured</span>'
    return '<span class="met">met</span>' if met else '<span class="missed">missed</span>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, raw: int = -1) -> str:
    """An HTML table; cells are escaped except column ``raw`` (pre-built verdict markup)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{c if i == raw else html.escape(c)}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _usage(usage: object) -> str:
    """Registered users against distinct recipients scanned, with the price bands."""
    assert isinstance(usage, dict)
    if not usage:
        return "<p>No usage recorded this month.</p>"
    return _table(
        ("domain", "registered", "scanned recipients", "bands (registered / actual)", "exceeds"),
        [
            (
                str(domain),
                count(u["registered_users"]) if u["registered_users"] is not None else "not set",
                count(u["scanned_recipients"]),
                f"{u['registered_band'] or '-'} / {u['actual_band']}",
                {True: "yes", False: "no"}.get(u["exceeds"], "-"),
            )
            for domain, u in usage.items()
        ],
    )


def render(report: Report) -> str:
    data = report.data
    levels, exclusions, alerts, events = (
        data["levels"], data["exclusions"], data["alerts"], data["events"],
    )  # fmt: skip
    assert isinstance(levels, dict) and isinstance(exclusions, list)
    assert isinstance(alerts, list) and isinstance(events, dict)
    title = html.escape(f"Mailmoat SLA report {data['month']} ({data['domain'] or 'all domains'})")
    counted = ", ".join(f"{k.replace('_', ' ')} {count(v)}" for k, v in events.items())
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{title}</h1>",
        f"<p>{html.escape(str(data['start']))} to {html.escape(str(data['end']))} "
        f"({html.escape(str(data['time_zone']))}); generated "
        f"{html.escape(str(data['generated_at']))[:19].replace('T', ' ')}. "
        f"Events: {html.escape(counted)}.</p>",
        "<h2>Service levels</h2>",
        _table(("level", "target", "measured", "result", "details"), _rows(levels), raw=3),
        "<h2>Exclusions</h2>",
        _table(
            ("kind", "domain", "start", "end", "levels", "events", "reason"),
            [
                (
                    str(w["kind"]),
                    str(w["domain"] or "all"),
                    str(w["start"]),
                    str(w["end"]),
                    str(w["levels"]),
                    count(w["events"]),
                    str(w["reason"]),
                )
                for w in exclusions
            ],
        )
        if exclusions
        else "<p>No exclusions this month.</p>",
        "<h2>Registered users and usage</h2>",
        _usage(data["usage"]),
        "<h2>Plots</h2>",
    ]
    for alt, png in (
        ("latency distribution", latency_plot(report)),
        ("5-minute averages", periods_plot(report)),
        ("queue length", queue_plot(report)),
    ):
        out.append(f'<p><img alt="{alt}" src="data:image/png;base64,{png}"></p>')
    out.append("<h2>Alerts</h2>")
    out.append(
        _table(
            ("at", "alert", "domain", "state", "detail"),
            [
                (
                    str(a["at"]),
                    str(a["alert"]),
                    str(a["domain"] or "all"),
                    str(a["state"]),
                    str(a["detail"] or ""),
                )
                for a in alerts
            ],
        )
        if alerts
        else "<p>No alerts this month.</p>"
    )
    out.append("</body></html>")
    return "\n".join(out)
