"""``mailmoat simulate``: a scenario's month, a progress bar, and each level monitor vs truth."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from simulator.errors import ScenarioError
from simulator.outputs import Result, Steps, run_scenario
from simulator.scenario import load_scenario

SHOWN = {
    "latency": ("measured", "within 2 min"),
    "false_positives": ("errors", "false positives"),
    "false_negatives": ("errors", "false negatives"),
    "virus": ("detected_not_stopped", "viruses not stopped"),
    "availability": ("measured", "availability"),
}


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4%}"
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def summary(result: Result) -> Table:
    """One row per level: as the monitor computed it, as the truth says, agreed or not."""
    table = Table(title=f"{result.truth['scenario']} {result.truth['month']}: monitor vs truth")
    for column in ("level", "monitor", "truth", "agree"):
        table.add_column(column, justify="left" if column == "level" else "right")
    figures = {(f["level"], f["figure"]): f for f in result.check["figures"]}
    for level, (figure, name) in SHOWN.items():
        f = figures[(level, figure)]
        mark = "[green]yes[/]" if result.check["levels"][level] else "[red]NO[/]"
        table.add_row(name, _value(f["monitor"]), _value(f["truth"]), mark)
    for level, agree in result.check["levels"].items():
        if level.startswith("helpdesk"):
            within = figures[(level, "within")]
            late = figures[(level, "late")]
            mine = f"{within['monitor']} in time, {late['monitor']} late"
            known = f"{within['truth']} in time, {late['truth']} late"
            table.add_row(level, mine, known, "[green]yes[/]" if agree else "[red]NO[/]")
    return table


def simulate_command(
    scenario: Path, out: Path, messages: int | None, console: Console, *, alerts: bool = True
) -> int:
    """Run a scenario with a progress bar; 1 when the monitor and the truth disagree."""
    s = load_scenario(scenario, messages)
    started = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        step = bar.add_task("starting", total=None)
        events = bar.add_task("events written", total=None, visible=False)

        def begin(name: str) -> None:
            bar.update(step, description=name)
            if name == "writing events.db":
                bar.update(events, visible=True)

        try:
            result = run_scenario(
                s,
                scenario.parent,
                out,
                Steps(
                    begin=begin,
                    written=lambda n, total: bar.update(events, total=total, advance=n),
                ),
                alerts=alerts,
            )
        except ScenarioError as exc:
            raise ScenarioError(f"{scenario}: {exc}") from None
    seconds = time.perf_counter() - started
    for skipped in result.run.mix.skipped:
        console.print(f"[yellow]corpus file skipped[/] {skipped}")
    console.print(summary(result))
    n = len(result.run)
    console.print(
        f"{n:,} messages simulated in {seconds:.1f} s ({n / seconds:,.0f} msg/s); outputs in {out}"
    )
    if not result.check["agree"]:
        console.print("[red]the monitor and the ground truth disagree: see check.json[/]")
        return 1
    return 0
