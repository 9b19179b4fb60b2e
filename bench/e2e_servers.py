"""Child processes of the end-to-end bench (gateway, drop sink, Postfix, rspamd), always stopped.

Every child listens on 127.0.0.1 only and runs inside a context manager
that terminates it (then kills it) on the way out, whatever happened.
Postfix's ``smtp-sink``/``smtp-source`` come from Debian's ``postfix``
package, installed here when missing without configuring a mail server.
The anchor an operator would run instead of Mailmoat (Postfix relaying with
rspamd's milter) runs as its own instances: config, queue and database
folders under the bench's temp folder, ephemeral loopback ports, and a
loopback resolver so rspamd never waits on the network.
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
DNS_READY = re.compile(r"dns: UDP on [\d.]+:(\d+)")
ROOT = Path(__file__).resolve().parent.parent
MAIL_ANCHOR = ROOT / "scripts/mail-anchor.sh"
POSTFIX = Path("/usr/sbin/postfix")
POSTCONF = Path("/usr/sbin/postconf")
RSPAMD = Path("/usr/bin/rspamd")
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
            [sys.executable, "-m", *args],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=ROOT,
        )  # fmt: skip
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


def loopback_dns(log: Path) -> contextlib.AbstractContextManager[int]:
    """A UDP resolver on 127.0.0.1 answering NXDOMAIN at once (``tests.dnsserver``); its port."""
    return _python_child(["tests.dnsserver"], DNS_READY, log)


def train_model(corpus: Path, out: Path) -> float:
    """Train the token model the example policy names on ``corpus``; seconds it took."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "service.cli", "train", "--corpus", str(corpus), "--out", str(out),
         "--seed", "1"],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return time.perf_counter() - started


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


def ensure_mail_anchor() -> str | None:
    """None when postfix and rspamd are there (``scripts/mail-anchor.sh`` installs them), or why."""
    done = subprocess.run(
        ["bash", str(MAIL_ANCHOR)], capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        return f"mail-anchor.sh failed ({done.returncode}): {done.stderr.strip()[-300:]}"
    return None


def _await_port(port: int, proc: subprocess.Popen[str] | None, what: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port}: see {log}")


def _owned_by(path: Path, user: str) -> Path:
    """``path`` created and handed to ``user`` (when root: the daemons drop to that user)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(path, user, user)
    return path


@contextlib.contextmanager
def rspamd_milter(run_dir: Path, dns_port: int) -> Iterator[int]:
    """rspamd's proxy worker as a milter scanning itself; yields the milter port.

    Debian's stock modules and scores (``/etc/rspamd``), one proxy process per
    core, no Redis (so no Bayes, greylisting or ratelimit: the modules that need
    it switch themselves off), every DNS lookup sent to ``dns_port``.
    """
    run_dir.mkdir(parents=True)
    os.chmod(run_dir, 0o755)  # the daemons below run as their own users
    port = free_port()
    conf, log = run_dir / "rspamd.conf", run_dir / "rspamd.log"
    conf.write_text(f"""
.include "$CONFDIR/common.conf"
options {{
    pidfile = "{run_dir}/rspamd.pid";
    filters = "chartable,dkim,regexp,fuzzy_check";
    cache_file = "$DBDIR/symbols.cache";
    url_tld = "${{SHAREDIR}}/effective_tld_names.dat";
    control_socket = "$DBDIR/rspamd.sock mode=0600";
    explicit_modules = ["settings", "bayes_expiry"];
    allow_raw_input = true;
    tempdir = "{run_dir}";
    dns {{ nameserver = ["127.0.0.1:{dns_port}"]; timeout = 1s; sockets = 16; retransmits = 2; }}
}}
logging {{ type = "file"; filename = "{log}"; level = "warning"; }}
worker "rspamd_proxy" {{
    bind_socket = "127.0.0.1:{port}";
    milter = yes;
    timeout = 120s;
    count = {os.cpu_count() or 1};
    upstream "local" {{ default = yes; self_scan = yes; }}
}}
worker "controller" {{
    bind_socket = "127.0.0.1:{free_port()}";
    count = 1;
    secure_ip = "127.0.0.1";
}}
""")
    user = ["-u", "_rspamd", "-g", "_rspamd"] if os.geteuid() == 0 else []
    variables = [f"--var=DBDIR={_owned_by(run_dir / 'db', '_rspamd')}", f"--var=RUNDIR={run_dir}"]
    _owned_by(run_dir, "_rspamd")
    with (run_dir / "rspamd.out").open("w") as output:
        proc = subprocess.Popen(
            [str(RSPAMD), "-f", "-c", str(conf), *user, *variables],
            stdout=output, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            _await_port(port, proc, "rspamd", log)
            yield port
        finally:
            _stop(proc)


@contextlib.contextmanager
def postfix_relay(
    run_dir: Path, sink_port: int, domain: str, milter_port: int | None
) -> Iterator[int]:
    """A Postfix instance relaying ``domain`` to the sink (through the milter if given).

    Debian's ``master.cf`` with every service out of chroot and ``smtpd`` on a
    loopback port; its own config, queue and data folders; stopped (``postfix
    stop``) and left behind with the temp folder. Yields the SMTP port.
    """
    if os.geteuid() != 0:
        raise RuntimeError("a Postfix instance needs root (it drops to the postfix user)")
    config = run_dir / "etc"
    config.mkdir(parents=True)
    (run_dir / "queue").mkdir()  # postfix creates its queues inside, owned by its users
    os.chmod(run_dir, 0o755)
    port = free_port()
    shutil.copy("/usr/share/postfix/master.cf.dist", config / "master.cf")
    (config / "main.cf").write_text("")
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": str(run_dir / "queue"),
        "data_directory": str(_owned_by(run_dir / "data", "postfix")),
        "myhostname": "postfix.anchor.bench",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "mydestination": "",
        "relay_domains": domain,
        "relayhost": f"[127.0.0.1]:{sink_port}",
        "smtp_dns_support_level": "disabled",
        "maillog_file": str(run_dir / "maillog"),
        "maillog_file_prefixes": str(run_dir),
        "smtpd_milters": f"inet:127.0.0.1:{milter_port}" if milter_port else "",
        "milter_default_action": "tempfail",
        "milter_protocol": "6",
        "alias_maps": "",
        "alias_database": "",
    }
    postconf = [str(POSTCONF), "-c", str(config)]
    steps = [
        [*postconf, "-e", *(f"{k}={v}" for k, v in settings.items())],
        [*postconf, "-F", "*/*/chroot = n"],
        [*postconf, "-MX", "smtp/inet"],
        [*postconf, "-M", f"127.0.0.1:{port}/inet=127.0.0.1:{port} inet n - n - - smtpd"],
        [str(POSTFIX), "-c", str(config), "start"],
    ]
    log = run_dir / "postfix.log"
    with log.open("w") as output:
        try:
            for argv in steps:
                subprocess.run(
                    argv, stdout=output, stderr=subprocess.STDOUT, check=True, timeout=120
                )
            _await_port(port, None, "postfix", log)
            yield port
        finally:
            subprocess.run(
                [str(POSTFIX), "-c", str(config), "stop"], stdout=output, stderr=subprocess.STDOUT,
                check=False, timeout=120,
            )  # fmt: skip
