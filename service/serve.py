"""``mailmoat serve``: run the gateway until SIGTERM, as one process or N workers.

With ``--workers N`` a supervisor starts N worker processes that share the
SMTP port through SO_REUSEPORT (the kernel spreads connections), each with
its own filter and delivery queue; worker 0 also serves HTTP and reports the
metrics of all workers through Prometheus' multiprocess mode. SIGTERM or
SIGINT stops accepting and drains (see ``Gateway.stop``).

Before anything starts, ``serve`` takes the store's lock (one running gateway
per store; a second one stops with the holder's pid instead of running
recovery on the first one's queue) and checks that the token model exists,
explaining how to get one when it does not (``service.firstrun``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
import tempfile
from pathlib import Path

from service.app import Gateway
from service.config import GatewayConfig, load_config
from service.firstrun import missing_model_hint, model_path, train_sample
from service.lock import StoreLocked, store_lock
from service.logs import configure
from store.leases import node_or_host
from store.store import Store


async def run_worker(config: GatewayConfig, worker: int = 0, workers: int = 1) -> None:
    gateway = Gateway(config, worker=worker, workers=workers, serve_http=worker == 0)
    await gateway.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if worker == 0:
        http = config.http
        print(
            f"mailmoat: SMTP on {config.smtp.host}:{gateway.smtp_port}, "
            f"HTTP on http://{http.host}:{gateway.http_port} (/metrics, /healthz, /readyz)"
            + (f", {workers} workers" if workers > 1 else ""),
            flush=True,
        )
    await stop.wait()
    await gateway.stop()


def _worker_main(config_path: Path | None, worker: int, workers: int) -> None:
    listener = configure()
    try:
        asyncio.run(run_worker(load_config(config_path), worker, workers))
    finally:
        listener.stop()


def serve(config_path: Path | None, workers: int, *, train_sample_model: bool = False) -> int:
    """Run until a signal; returns the process exit status."""
    config = load_config(config_path)
    model = model_path(config)
    if model is not None and not model.exists():
        if not train_sample_model:
            print(f"mailmoat serve: {missing_model_hint(model)}", file=sys.stderr)
            return 2
        print(f"mailmoat serve: {train_sample(model)}", flush=True)
    try:
        with store_lock(config.store.path, _lock_node(config)):
            listener = configure()
            try:
                return _serve(config, config_path, workers)
            finally:
                listener.stop()
    except StoreLocked as exc:
        print(f"mailmoat serve: {exc}", file=sys.stderr)
        return 1


def _lock_node(config: GatewayConfig) -> str | None:
    """The lease owner's name when nodes share a PostgreSQL store; None for a SQLite file."""
    if config.store.url is None:
        return None
    return node_or_host(config.store.node)


def _serve(config: GatewayConfig, config_path: Path | None, workers: int) -> int:
    if workers == 1:
        asyncio.run(run_worker(config))
        return 0
    if config.smtp.port == 0 or config.http.port == 0:
        print("mailmoat serve: --workers needs fixed SMTP and HTTP ports", file=sys.stderr)
        return 2
    Store(config.store.location).close()  # migrate once, before workers race to do it
    # Must be set before any worker imports prometheus_client.
    metrics_dir = tempfile.mkdtemp(prefix="mailmoat-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(target=_worker_main, args=(config_path, i, workers), name=f"worker-{i}")
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    from service.metrics import worker_exited  # after PROMETHEUS_MULTIPROC_DIR is set

    status = 0
    for proc in procs:
        proc.join()
        if proc.pid is not None:
            worker_exited(proc.pid)
        status = status or (proc.exitcode or 0)
    return status
