"""``mailmoat demo``: the whole product on embedded defaults, in one command.

Makes the sample corpus to replay, trains a model on a different built-in
sample if there is none, starts the gateway from
``examples/gateway.toml`` (SMTP 2525, HTTP 8025, example.test delivered to
127.0.0.1:2526), replays the sample through it into the replay tool's own
sink on 2526, feeds the labels to the SLA monitor, prints the replay summary,
the month's SLA report and a readable tail of the gateway's JSON log (kept
whole in ``data/gateway.log``), then leaves the gateway running until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from rich.console import Console
from sqlalchemy.dialects.sqlite import insert

from loadtest.corpus import read_corpus
from loadtest.envelopes import prepare
from loadtest.feed import feed
from loadtest.generate import generate
from loadtest.replay import ReplayConfig, replay
from loadtest.report import summarize, summary_table, write_json
from loadtest.report_html import write_html
from loadtest.schedule import Bounds
from quarantine import tokens
from service.app import Gateway
from service.config import GatewayConfig, load_config
from service.firstrun import SAMPLE_COUNT, train_sample
from service.lock import store_lock
from service.logs import configure, readable, stop
from slamonitor.cli import write_report
from slamonitor.config import SlaSettings
from slamonitor.periods import Month
from slamonitor.report_html import share
from store.sla_tables import services

console = Console()
REPLAY_COUNT = 300
LOG_TAIL = 12


def prepare_data(data: Path, model: Path) -> Path:
    """The replay corpus and the model, made once; returns the corpus to replay."""
    sample = data / "demo-corpus"
    if not (sample / "labels.tsv").exists():
        # One virus in 300: above 1 in 200 the SLA monitor would call the replay an outbreak.
        generate(sample, REPLAY_COUNT, seed=7, viruses=1)
    if not model.exists():
        console.print(f"[bold]training[/] a model on the built-in sample ({SAMPLE_COUNT} messages)")
        console.print(train_sample(model))
    return sample


def log_tail(path: Path, lines: int = LOG_TAIL) -> str:
    """The last ``lines`` of the gateway's JSON log, one readable line each."""
    every = path.read_text(encoding="utf-8").splitlines()
    shown = "\n".join(f"  {readable(line)}" for line in every[-lines:])
    return f"gateway log (last {min(lines, len(every))} of {len(every)} lines, {path}):\n{shown}"


async def run(config_path: Path | None) -> int:
    config = load_config(config_path)
    # The replayed recipients are made up: no welcome notices or digests for them.
    quiet = config.quarantine.model_copy(update={"notify_new_accounts": False, "digests": False})
    config = config.model_copy(update={"quarantine": quiet})
    data = config.store.path.parent
    model = config.filter.model or data / "model.npz"
    sample = prepare_data(data, model)
    # JSON lines into a file: the terminal gets the summary, then a readable tail.
    with store_lock(config.store.path):
        listener = configure(path=data / "gateway.log")
        try:
            return await _run(config, data, sample)
        finally:
            stop(listener)


async def _run(config: GatewayConfig, data: Path, sample: Path) -> int:
    gateway = Gateway(config)
    await gateway.start()
    try:
        console.print(f"[bold]gateway[/] up: SMTP 127.0.0.1:{gateway.smtp_port}, "
                      f"HTTP http://127.0.0.1:{gateway.http_port}")  # fmt: skip
        messages = prepare(read_corpus(sample), "example.test", lambda e: console.print(str(e)))
        sink = config.domains["example.test"].route
        result = await replay(ReplayConfig(
            target=("127.0.0.1", gateway.smtp_port), bounds=Bounds(count=len(messages)),
            sink=sink, concurrency=10, drain=60.0,
        ), messages)  # fmt: skip
        summary = summarize(result, corpus=str(sample))
        console.print(summary_table(summary))
        write_json(summary, data / "demo-replay.json")
        write_html(summary, result, data / "demo-replay.html", data / "demo-replay.json")
        fed = await asyncio.to_thread(feed, config.store.path, result)
        now = time.time()
        # The contract does not measure a customer's first 30 days; the demo's example.test
        # is an established customer, in service for two months.
        gateway.store.write(
            lambda conn: conn.execute(
                insert(services).values(domain="example.test", started_at=now - 60 * 86400)
                .on_conflict_do_nothing()
            )
        )  # fmt: skip
        report = write_report(
            gateway.store.engine, Month.parse(time.strftime("%Y-%m", time.gmtime(now))),
            SlaSettings(), now=now, json_out=data / "sla-report.json",
            html_out=data / "sla-report.html",
        )  # fmt: skip
        levels = report.data["levels"]
        assert isinstance(levels, dict)
        console.print(f"[bold]SLA month to date[/] ({fed} labelled messages from the replay):")
        for name, level in levels.items():
            if "measured" in level:
                verdict = {True: "met", False: "missed", None: "not measured"}[level["met"]]
                console.print(f"  {name.replace('_', ' '):16} {share(level['measured']):>13}"
                              f"  target {share(level['target']):>8}  {verdict}")  # fmt: skip
        await asyncio.sleep(0.2)  # the log thread writes what the replay left queued
        print(log_tail(data / "gateway.log"), flush=True)
        _, token = gateway.store.write(tokens.create, name="demo-operator", operator=True,
                                       domains=[], now=now)  # fmt: skip
        base = f"http://127.0.0.1:{gateway.http_port}"
        print(  # plain print: the console would wrap the token and the curl line
            f"\nReports: {data / 'demo-replay.html'}, {data / 'sla-report.html'}\n"
            f"API docs: {base}/docs   metrics: {base}/metrics   quarantine pages: {base}/my/\n"
            f"operator token: {token}\n"
            f'  curl -H "Authorization: Bearer {token}" {base}/api/v1/quarantine\n'
            "The gateway keeps running; Ctrl-C stops it.",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await gateway.stop()
    return 0
