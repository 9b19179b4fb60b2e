"""Alerts over the month: the real rules evaluated by a real Prometheus on the scraped metrics.

``promtool tsdb create-blocks-from openmetrics`` turns metrics.om into
blocks (with its hidden ``--max-block-duration``: at the default 2 hours it
re-reads the whole file for each of a month's 372 blocks, 50 s instead of
half a second), a Prometheus on loopback opens them, and each alert of
``deploy/prometheus/rules.yml`` is run as a range query at the evaluation
interval with its recording rules inlined. An alert fires once its
expression has held for its ``for`` duration at every evaluation, as
Prometheus' rule manager decides.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from simulator.openmetrics import SCRAPE
from simulator.scenario import seconds

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
MAX_POINTS = 10_000


class AlertsUnavailable(RuntimeError):
    """promtool or prometheus is missing or failed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    expr: str
    hold: float
    labels: dict[str, str]


def load_rules(path: Path = RULES) -> list[Rule]:
    """Every alerting rule, its recording rules inlined (they are evaluated at the same step)."""
    groups = yaml.safe_load(path.read_text())["groups"]
    records = {r["record"]: r["expr"].strip() for g in groups for r in g["rules"] if "record" in r}
    found = []
    for g in groups:
        for r in g["rules"]:
            if "alert" not in r:
                continue
            expr = r["expr"].strip()
            for name, body in records.items():
                expr = re.sub(rf"(?<![\w:]){re.escape(name)}(?![\w:])", f"({body})", expr)
            hold = seconds(r.get("for", "0s"))
            found.append(Rule(r["alert"], expr, hold, dict(r.get("labels", {}))))
    return found


def tool(name: str) -> str:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "promtool.sh")], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise AlertsUnavailable(done.stderr.strip() or "promtool not found")
    found = Path(done.stdout.strip().splitlines()[-1]).with_name(name)
    if not found.is_file():
        raise AlertsUnavailable(f"{found} not found (Debian package prometheus installs it)")
    return str(found)


def blocks(metrics: Path, tsdb: Path) -> None:
    """Prometheus blocks of at most a month from an OpenMetrics file."""
    done = subprocess.run(
        [tool("promtool"), "tsdb", "create-blocks-from", "openmetrics", "-q",
         "--max-block-duration=744h", str(metrics), str(tsdb)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise AlertsUnavailable(f"promtool create-blocks-from: {done.stderr.strip()}")


READY_SECONDS = 300.0
"""How long Prometheus may take to open the blocks and answer ``/-/ready``."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def prometheus(tsdb: Path, scratch: Path) -> Iterator[str]:
    """A Prometheus on loopback serving the blocks; yields its base URL, stops it after."""
    config = scratch / "prometheus.yml"
    config.write_text(f"global:\n  evaluation_interval: {int(SCRAPE)}s\n")
    port = _free_port()
    log = scratch / "prometheus.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tsdb}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y",
             "--log.level=error"],
            stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        # Loading a month of blocks is quick on a quiet machine; a loaded one (CI beside other
        # work) can take minutes, and giving up early would fail a correct month.
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AlertsUnavailable(f"prometheus exited: {log.read_text().strip()}")
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            raise AlertsUnavailable(f"prometheus did not become ready in {READY_SECONDS:.0f} s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _range(url: str, expr: str, start: float, end: float) -> dict[str, set[float]]:
    """Per label set, the evaluation times at which ``expr`` returned a sample."""
    found: dict[str, set[float]] = {}
    step = SCRAPE
    t = start
    while t < end:
        stop = min(end, t + step * (MAX_POINTS - 1))
        query = urllib.parse.urlencode({"query": expr, "start": t, "end": stop, "step": step})
        with urllib.request.urlopen(f"{url}/api/v1/query_range?{query}", timeout=600) as r:
            body = json.load(r)
        for item in body["data"]["result"]:
            key = json.dumps(item["metric"], sort_keys=True)
            found.setdefault(key, set()).update(float(v[0]) for v in item["values"])
        t = stop + step
    return found


def firing(url: str, rule: Rule, start: float, end: float) -> list[dict[str, Any]]:
    """Firing intervals: the expression held at each step for at least the rule's ``for``."""
    out = []
    for key, times in sorted(_range(url, rule.expr, start, end).items()):
        run_start: float | None = None
        last = -1.0
        firing_from: float | None = None
        for t in sorted(times):
            if run_start is None or t - last > SCRAPE * 1.5:
                if firing_from is not None:
                    out.append(_interval(rule, key, firing_from, last + SCRAPE))
                run_start, firing_from = t, None
            if firing_from is None and t - run_start >= rule.hold:
                firing_from = t
            last = t
        if firing_from is not None:
            out.append(_interval(rule, key, firing_from, last + SCRAPE))
    return out


def _interval(rule: Rule, key: str, start: float, end: float) -> dict[str, Any]:
    return {"alert": rule.name, "labels": json.loads(key) | rule.labels, "start": start, "end": end}


def evaluate(metrics: Path, start: float, end: float) -> list[dict[str, Any]]:
    """Every alert's firing intervals over [start, end), in time order."""
    with tempfile.TemporaryDirectory(prefix="mailmoat-sim-tsdb-") as tmp:
        scratch = Path(tmp)
        tsdb = scratch / "tsdb"
        blocks(metrics, tsdb)
        with prometheus(tsdb, scratch) as url:
            found = [i for rule in load_rules() for i in firing(url, rule, start, end)]
    return sorted(found, key=lambda i: (i["start"], i["alert"]))
