"""Child processes of the end-to-end bench (gateway, drop sink, Postfix tools), always stopped.

Every child listens on 127.0.0.1 only and runs inside a context manager
that terminates it (then kills it) on the way out, whatever happened.
Postfix's ``smtp-sink``/``smtp-source`` come from Debian's ``postfix``
package, installed here when missing without configuring a mail server.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SMTP_SINK = Path("/usr/sbin/smtp-sink")
SMTP_SOURCE = Path("/usr/sbin/smtp-source")
GATEWAY_READY = re.compile(r"SMTP on [\d.]+:(\d+)")
SINK_READY = re.compile(r"sink: SMTP on [\d.]+:(\d+)")
STOP_SECONDS = 60.0  # a gateway drains open sessions for up to 30 s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _await_line(proc: subprocess.Popen[str], name: str, pattern: re.Pattern[str]) -> int:
    """The port in the child's ready line; RuntimeError if it exits or stays silent."""
    assert proc.stdout is not None
    timeout = 120.0
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([proc.stdout], [], [], left)
        line = proc.stdout.readline() if readable else ""
        if found := pattern.search(line):
            return int(found.group(1))
        if readable and not line:
            raise RuntimeError(f"{name} exited before it was ready: {proc.wait()}")
    raise RuntimeError(f"{name} not ready after {timeout} s")


@contextlib.contextmanager
def _python_child(args: list[str], pattern: re.Pattern[str], log: Path) -> Iterator[int]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", *args], stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
        )
        try:
            yield _await_line(proc, args[0], pattern)
        finally:
            _stop(proc)


def gateway(config: Path, workers: int, log: Path) -> contextlib.AbstractContextManager[int]:
    """``mailmoat serve``; yields its SMTP port once it says it is ready."""
    args = ["service.cli", "serve", "--config", str(config), "--workers", str(workers)]
    return _python_child(args, GATEWAY_READY, log)


def drop_sink(log: Path) -> contextlib.AbstractContextManager[int]:
    """A bare aiosmtpd server that accepts and drops (``loadtest.sink``); yields its port."""
    return _python_child(["loadtest.sink", "--port", "0"], SINK_READY, log)


def ensure_postfix() -> str | None:
    """None when smtp-sink and smtp-source are there (installing them if needed), else why not."""
    if SMTP_SINK.exists() and SMTP_SOURCE.exists():
        return None
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and shutil.which("sudo") is None:
        return "postfix is not installed and installing needs root (no sudo)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # "No configuration": the package brings its tools but sets up no mail server on port 25.
    preseed = "postfix postfix/main_mailer_type select No configuration\n"
    steps = [
        ([*sudo, "debconf-set-selections"], preseed),
        ([*sudo, "apt-get", "update"], None),
        ([*sudo, "apt-get", "install", "-y", "--no-install-recommends", "postfix"], None),
    ]
    for argv, stdin in steps:
        try:
            done = subprocess.run(
                argv, input=stdin, env=env, capture_output=True, text=True, timeout=600
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(argv)}: {exc}"
        if done.returncode != 0:
            return f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-300:]}"
    return None if SMTP_SINK.exists() and SMTP_SOURCE.exists() else "postfix has no smtp-sink"


@contextlib.contextmanager
def smtp_sink(log: Path) -> Iterator[int]:
    """Postfix's smtp-sink on 127.0.0.1 (it drops what it gets); yields its port."""
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []  # it refuses to run as root
    with log.open("w") as output:
        proc = subprocess.Popen(
            [str(SMTP_SINK), *user, f"127.0.0.1:{port}", "256"],
            stdout=output, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"smtp-sink did not listen on {port}: see {log}")
            yield port
        finally:
            _stop(proc)


@dataclass(frozen=True)
class SourceRun:
    """One smtp-source run: how long it took and whether every message went through."""

    seconds: float
    returncode: int
    stderr: str


def smtp_source(
    port: int, *, sessions: int, count: int, size: int, mail_from: str, rcpt: str
) -> SourceRun:
    """Postfix's smtp-source: ``count`` messages of ``size`` payload bytes, reused sessions."""
    argv = [str(SMTP_SOURCE), "-s", str(sessions), "-m", str(count), "-l", str(size), "-d",
            "-f", mail_from, "-t", rcpt, "-M", "loadtest.localhost",
            f"127.0.0.1:{port}"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    return SourceRun(time.perf_counter() - started, done.returncode, done.stderr.strip()[-500:])
