"""A real Prometheus (Debian's package) scraping a running gateway with the project's rules.

It also runs the blackbox exporter's SMTP probe against the gateway. Checks what an
operator relies on: the targets are up, every rule group evaluates without error,
every dashboard query is valid and returns data after traffic, and the queue alert
fires while the downstream is stopped. Scrape and evaluation run every second and
the rules' ``for:`` durations are cut to one second, so the run takes seconds; the
gateway's clock is injected so a message can be made three minutes old at once.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest
import yaml

from service.app import Gateway
from tests.dnsserver import DnsServer
from tests.service.gatewayfixtures import POLICY, gateway_config, message, send
from tests.smtpsink import RecordingSink

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy/grafana/dashboards/mailmoat-sla.json"
ZONE = "zen.dnsbl.test"

NEEDS_EVENTS_THIS_RUN_HAS_NOT = {
    # Exported only once measured: no helpdesk ticket and no virus release happen here.
    "mailmoat_sla_helpdesk_within_target_ratio",
    "mailmoat_sla_virus_release_within_target_ratio",
}


class ShiftedClock:
    """Wall-clock time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def fast_rules(target: Path) -> None:
    """The project's rules with every ``for:`` cut to 1 s (expressions untouched)."""
    rules = (ROOT / "deploy/prometheus/rules.yml").read_text()
    target.write_text(re.sub(r"(?m)^(\s+for:) \S+$", r"\1 1s", rules))


def prometheus_config(directory: Path, gateway: Gateway, blackbox: int) -> Path:
    """deploy/prometheus/prometheus.yml pointed at this gateway and exporter, 1 s intervals."""
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config.pop("alerting")
    fast_rules(directory / "rules.yml")
    config["rule_files"] = [str(directory / "rules.yml")]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    jobs["mailmoat"]["scrape_timeout"] = "1s"
    jobs["mailmoat"]["static_configs"][0]["targets"] = [f"127.0.0.1:{gateway.http_port}"]
    jobs["mailmoat-smtp"]["static_configs"][0]["targets"] = [f"127.0.0.1:{gateway.smtp_port}"]
    jobs["mailmoat-smtp"]["relabel_configs"][-1]["replacement"] = f"127.0.0.1:{blackbox}"
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


def daemon(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)


async def test_prometheus_with_the_projects_rules_and_dashboard(
    tmp_path: Path,
    dns: DnsServer,
    sink: RecordingSink,
    prometheus: str,
    blackbox_exporter: str,
) -> None:
    (tmp_path / "policy.toml").write_text(
        POLICY
        + f'\n[dns]\nnameservers = ["127.0.0.1"]\nport = {dns.port}\ntimeout = 1.0\n'
        + f'\n[[dnsbl]]\nzone = "{ZONE}"\n'
    )
    clock = ShiftedClock()
    # A short month-to-date cache: a refresh reads this run's mail.
    config = gateway_config(tmp_path, sink.port, sla={"live_cache_seconds": 0.5})
    gateway = Gateway(config, clock=clock)
    await gateway.start()
    blackbox_port, prometheus_port = free_port(), free_port()
    config = prometheus_config(tmp_path, gateway, blackbox_port)
    processes = [
        daemon(
            [
                blackbox_exporter,
                f"--config.file={ROOT / 'deploy/blackbox/blackbox.yml'}",
                f"--web.listen-address=127.0.0.1:{blackbox_port}",
            ],
            tmp_path / "blackbox.log",
        ),
        daemon(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            tmp_path / "prometheus.log",
        ),
    ]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{prometheus_port}") as api:
            await exercise(api, gateway, sink, clock)
    except BaseException:
        for log in ("prometheus.log", "blackbox.log"):
            print(f"--- {log}\n" + (tmp_path / log).read_text(errors="replace")[-4000:])
        raise
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
        await gateway.stop()


async def exercise(
    api: httpx.AsyncClient, gateway: Gateway, sink: RecordingSink, clock: ShiftedClock
) -> None:
    async def ready() -> bool:
        try:
            return (await api.get("/-/ready")).status_code == 200
        except httpx.TransportError:
            return False

    async def query(expr: str) -> list[dict[str, Any]]:
        reply = await api.get("/api/v1/query", params={"query": expr})
        body = reply.json()
        assert reply.status_code == 200 and body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    await until(ready, "Prometheus to be ready")

    # Traffic: clean mail, spam by the sender blacklist, and a refused relay attempt.
    for i in range(3):
        await send(gateway.smtp_port, message(subject=f"hello {i}"))
    await send(gateway.smtp_port, message(sender="x@spammer.example"), sender="x@spammer.example")
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await send(gateway.smtp_port, message(), rcpts=("x@elsewhere.example",))
    await sink.wait_for(3, timeout=30)

    async def targets_up() -> bool:
        active = (await api.get("/api/v1/targets")).json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in active}
        return health == {"mailmoat": "up", "mailmoat-smtp": "up"}

    await until(targets_up, "the gateway and its SMTP probe to be up")
    assert (await query('probe_success{job="mailmoat-smtp"}'))[0]["value"][1] == "1"

    async def rules_evaluated() -> list[dict[str, Any]] | None:
        groups: list[dict[str, Any]] = (await api.get("/api/v1/rules")).json()["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return groups if all(r["health"] != "unknown" for r in rules) else None

    groups = await until(rules_evaluated, "every rule to be evaluated")
    assert {g["name"] for g in groups} >= {"mailmoat-sla-latency", "mailmoat-availability"}
    broken = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"]]
    assert [b for b in broken if b[1]] == []
    assert all(r["health"] == "ok" for g in groups for r in g["rules"])

    # The downstream stops; a message waits; three minutes later the queue alert fires.
    sink.stop()
    await send(gateway.smtp_port, message(subject="stuck"))

    async def queued() -> bool:
        return bool(gateway.outbound.lengths())

    await until(queued, "the message to wait for delivery")
    clock.offset += 180.0

    async def stuck() -> list[dict[str, Any]]:
        return await query('ALERTS{alertname="MailmoatQueueStuck", alertstate="firing"}')

    [alert] = await until(stuck, "MailmoatQueueStuck to fire")
    assert alert["metric"]["domain"] == "example.test"
    assert alert["metric"]["severity"] == "page"

    # The SLA gauges are computed in the background every few seconds: take a snapshot that
    # includes this run's mail now, and wait for a scrape of it, instead of racing the timer.
    await asyncio.to_thread(gateway.sla_gauges.refresh)

    async def sla_scraped() -> list[dict[str, Any]]:
        return await query("mailmoat_sla_latency_within_target_ratio")

    await until(sla_scraped, "the SLA gauges with this run's mail")

    # Every dashboard query is valid and returns data, variables as Grafana fills them.
    dashboard = json.loads(DASHBOARD.read_text())
    empty = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = (
                target["expr"]
                .replace("$job", "mailmoat")
                .replace("$instance", ".*")
                .replace("$__rate_interval", "15s")
            )
            if not await query(expr) and not any(
                name in expr for name in NEEDS_EVENTS_THIS_RUN_HAS_NOT
            ):
                empty.append((panel["title"], expr))
    assert empty == [], empty
