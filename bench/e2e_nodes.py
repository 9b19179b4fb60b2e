"""End-to-end bench (issue 11): one node on SQLite, one on PostgreSQL, two on PostgreSQL.

Each row replays the same shuffled corpus through the gateway into the
replay's own sink with ``mailmoat replay``'s engine (20 sessions, every
recipient mapped to a local part of example.test, so held mail opens
accounts as a new customer's would). Closed loop first: the sustained
end-to-end rate is accepted messages (delivered + held) per second from the
first MAIL to the last arrival. Then open loop at 80% of that rate for a
fixed time: the round-trip p95 is the latency an operator would see. "Two
nodes" are two gateway processes with their own leases on one PostgreSQL
behind one SMTP port (SO_REUSEPORT), i.e. ``mailmoat serve --workers 2``.
On this 2-core machine the load generator, the sink, PostgreSQL and the
gateway processes share the cores, so a second node cannot add a core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from e2e_report import console
from e2e_servers import free_port, gateway, train_model

from loadtest.corpus import read_corpus
from loadtest.envelopes import prepare
from loadtest.replay import Bounds, ReplayConfig, ReplayResult, replay
from loadtest.report import latency_ms
from tests.postgres import RUNNING, answers, fresh_database, throwaway_cluster

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "example.test"


def _config(run_dir: Path, sink_port: int, store: str, model: Path | None) -> Path:
    policy = os.path.relpath(ROOT / "examples/policy.toml", run_dir)
    model_line = f'model = "{os.path.relpath(model, run_dir)}"' if model else ""
    path = run_dir / "gateway.toml"
    path.write_text(f"""
[smtp]
port = {free_port()}
hostname = "mx.mailmoat.bench"
max_commands = 100000
[http]
port = {free_port()}
[store]
{store}
[filter]
policy = "{policy}"
{model_line}
[quarantine]
link_secret = "bench link secret, the same on every node"
[domains."{DOMAIN}"]
downstream = "127.0.0.1:{sink_port}"
""")
    return path


def figures(result: ReplayResult) -> dict[str, Any]:
    """One run's counts, end-to-end rate and latencies, the same for every server under test."""
    accepted = [r for r in result.records if r.accepted]
    arrivals = [r.arrived for r in accepted if r.arrived is not None]
    first = min(r.started for r in result.records)
    last = max([*arrivals, *(r.replied for r in accepted)], default=first)
    delivered = len(arrivals)
    return {
        "sent": len(result.records),
        "accepted": len(accepted),
        "refused": len(result.records) - len(accepted),
        "delivered": delivered,
        "held": len(accepted) - delivered,
        "seconds": round(last - first, 3),
        "end_to_end_per_second": round(len(accepted) / (last - first), 1) if last > first else None,
        "round_trip_ms": latency_ms([r.arrived - r.started for r in accepted if r.arrived]),
        "smtp_ms": latency_ms([r.replied - r.started for r in accepted]),
        "repeats": result.repeats,
    }


@contextlib.contextmanager
def _postgres() -> Iterator[str]:
    if answers(RUNNING):
        yield RUNNING
        return
    with throwaway_cluster() as url:
        yield url


class Bench:
    """The shuffled corpus and the replay client every row sends with."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        items = list(read_corpus(args.corpus))
        random.Random(args.seed).shuffle(items)
        self.messages = prepare(items, DOMAIN, lambda error: None)

    async def replay(self, port: int, sink: int, rate: float | None) -> ReplayResult:
        bounds = Bounds(self.args.count) if rate is None else Bounds(None, self.args.open_seconds)
        config = ReplayConfig(
            target=("127.0.0.1", port), bounds=bounds, sink=("127.0.0.1", sink),
            concurrency=self.args.concurrency, rate=rate, drain=120.0, drain_idle=10.0,
        )  # fmt: skip
        return await replay(config, self.messages)

    async def row(self, name: str, stores: tuple[str, str], workers: int) -> dict[str, Any]:
        """Closed loop on the first store, open loop at 80% of its rate on the second."""
        runs = []
        rate: float | None = None
        for run, store in zip(("closed", "open"), stores, strict=True):
            run_dir = self.tmp / f"{name.replace(' ', '-')}-{run}"
            run_dir.mkdir()
            sink = free_port()
            config = _config(run_dir, sink, store, self.args.model)
            with gateway(config, workers, run_dir / "gateway.log") as port:
                runs.append(figures(await self.replay(port, sink, rate)))
            rate = 0.8 * (runs[0]["end_to_end_per_second"] or 1.0)
        closed, opened = runs
        p95 = (opened["round_trip_ms"] or {}).get("p95")
        console.log(
            f"{name}: {closed['end_to_end_per_second']} msg/s end to end; open loop at"
            f" {rate:.0f} msg/s: round trip p95 {p95} ms"
        )
        return {"name": name, "workers": workers, "closed_loop": closed,
                "open_loop": {"rate": round(rate or 0.0, 1), **opened}}  # fmt: skip


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="mailmoat-nodes-"))
    if args.model is None:  # the example policy names a token model: train one, as e2e does
        args.model = tmp / "model.npz"
        train_model(args.corpus, args.model)
    bench = Bench(args, tmp)
    rows = []
    try:
        sqlite = tuple(f'path = "{tmp / run}.db"' for run in ("closed", "open"))
        rows.append(await bench.row("1 node sqlite", sqlite, 1))  # type: ignore[arg-type]
        with _postgres() as server:
            for name, workers in (("1 node postgresql", 1), ("2 nodes postgresql", 2)):
                with fresh_database(server) as closed, fresh_database(server) as opened:
                    urls = (f'url = "{closed}"', f'url = "{opened}"')
                    rows.append(await bench.row(name, urls, workers))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = {r["name"]: r["closed_loop"]["end_to_end_per_second"] or 0.0 for r in rows}
    two = base.get("2 nodes postgresql", 0.0)
    return {
        "benchmark": "e2e_nodes",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cores": os.cpu_count(),
            "note": "replay client, sink, PostgreSQL and every gateway node share these cores",
        },
        "corpus": str(args.corpus),
        "messages_closed_loop": args.count,
        "open_loop_seconds": args.open_seconds,
        "concurrency": args.concurrency,
        "rows": rows,
        "scaling": {
            "two_pg_over_one_pg": round(two / base["1 node postgresql"], 2)
            if base.get("1 node postgresql")
            else None,
            "two_pg_over_one_sqlite": round(two / base["1 node sqlite"], 2)
            if base.get("1 node sqlite")
            else None,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/corpus/spamassassin")
    parser.add_argument("--count", type=int, default=3000, help="messages, closed loop")
    parser.add_argument("--open-seconds", type=float, default=30.0, help="open-loop duration")
    parser.add_argument("--concurrency", type=int, default=20, help="SMTP sessions at once")
    parser.add_argument("--seed", type=int, default=11, help="corpus shuffle")
    parser.add_argument(
        "--model", type=Path, default=None, help="token model (default: trained on the corpus)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/e2e_nodes.json")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(json.dumps(result["scaling"]))
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
