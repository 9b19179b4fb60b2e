"""``mailmoat demo``: the whole product on embedded defaults, in one command.

Makes the sample corpora (a training one and a different one to replay),
trains a model if there is none, starts the gateway from
``examples/gateway.toml`` (SMTP 2525, HTTP 8025, example.test delivered to
127.0.0.1:2526), replays the sample through it into the replay tool's own
sink on 2526, feeds the labels to the SLA monitor, prints the replay summary
and the month's SLA report, then leaves the gateway running until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from rich.console import Console
from sqlalchemy.dialects.sqlite import insert

from filters.mail import Mail
from filters.training import train
from loadtest.corpus import read_corpus
from loadtest.envelopes import prepare
from loadtest.feed import feed
from loadtest.generate import generate
from loadtest.replay import ReplayConfig, replay
from loadtest.report import summarize, summary_table, write_html, write_json
from loadtest.schedule import Bounds
from quarantine import tokens
from service.app import Gateway
from service.config import load_config
from slamonitor.cli import write_report
from slamonitor.config import SlaSettings
from slamonitor.periods import Month
from store.sla_tables import services

console = Console()
TRAIN_COUNT, REPLAY_COUNT = 600, 300


def prepare_data(data: Path, model: Path) -> Path:
    """The corpora and the model, made once; returns the corpus to replay."""
    training, sample = data / "demo-train", data / "demo-corpus"
    if not (training / "labels.tsv").exists():
        generate(training, TRAIN_COUNT, seed=1)
    if not (sample / "labels.tsv").exists():
        # One virus in 300: above 1 in 200 the SLA monitor would call the replay an outbreak.
        generate(sample, REPLAY_COUNT, seed=7, viruses=1)
    if not model.exists():
        console.print(f"[bold]training[/] a model on {training} ...")
        labelled = (
            (Mail.from_file_bytes(i.data), i.label == "spam") for i in read_corpus(training)
        )
        model.parent.mkdir(parents=True, exist_ok=True)
        train(labelled, seed=1, corpus=str(training)).save(model)
    return sample


async def run(config_path: Path | None) -> int:
    config = load_config(config_path)
    data = config.store.path.parent
    model = config.filter.model or data / "model.npz"
    sample = prepare_data(data, model)
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
        write_html(summary, result, data / "demo-replay.html")
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
                console.print(f"  {name:18} measured {level['measured']!s:>22}  "
                              f"target {level['target']!s:>8}  met {level['met']}")  # fmt: skip
        _, token = gateway.store.write(tokens.create, name="demo-operator", operator=True,
                                       domains=[], now=now)  # fmt: skip
        base = f"http://127.0.0.1:{gateway.http_port}"
        print(  # plain print: the console would wrap the token and the curl line
            f"\nReports: {data / 'demo-replay.html'}, {data / 'sla-report.html'}\n"
            f"API docs: {base}/docs   metrics: {base}/metrics\n"
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
