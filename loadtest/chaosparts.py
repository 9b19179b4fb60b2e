"""The moving parts of the chaos run: a killable gateway process, a counting sink, a fillable disk.

The gateway runs as ``mailmoat serve`` in its own session, so a SIGKILL of
its process group takes the filter processes and their fork server with it,
like the OOM killer or a power cut would; its filter processes are found as
its grandchildren (children of the fork server). The store lives on a
size-limited tmpfs when one can be mounted (root): shrinking the mount to
what is used makes every new write fail with ENOSPC, a real full disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from loadtest.sink import TraceSink

READY = re.compile(r"SMTP on [\d.]+:(\d+), HTTP on http://[\d.]+:(\d+)")
CHAOS_HEADER = "X-Chaos-Id"
_CHAOS = re.compile(rb"^X-Chaos-Id:[ \t]*(\d+)", re.MULTILINE | re.IGNORECASE)
_QUEUE_ID = re.compile(rb"^X-Mailmoat-Queue-Id:[ \t]*(\S+)", re.MULTILINE | re.IGNORECASE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
TMPFS_SIZE = 8 * 1024**3


def chaos_id(data: bytes) -> int | None:
    """The chaos id stamped in the header block of ``data``, if any."""
    end = _HEADER_END.search(data)
    found = _CHAOS.search(data, 0, end.start() if end else len(data))
    return int(found.group(1)) if found else None


@dataclass
class Arrival:
    queue_id: str
    at: float


class CountingSink(TraceSink):
    """The customer's server: every arrival by chaos id, with the gateway's queue id."""

    def __init__(self, port: int, clock: object) -> None:
        super().__init__("127.0.0.1", port)
        self.by_id: dict[int, list[Arrival]] = defaultdict(list)
        self._now = clock

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        found = chaos_id(data)
        if found is not None:
            queue = _QUEUE_ID.search(data)
            qid = queue.group(1).decode() if queue else ""
            assert callable(self._now)
            self.by_id[found].append(Arrival(qid, float(self._now())))
        self.received += 1
        return "250 2.0.0 OK"


@dataclass
class GatewayProcess:
    """``mailmoat serve`` in its own process group; ``start()`` again after ``kill()``."""

    config: Path
    log: Path
    proc: asyncio.subprocess.Process | None = None
    smtp_port: int = 0  # ephemeral, new at every start: a fixed one may be taken meanwhile
    http_port: int = 0

    async def start(self, timeout: float = 120.0) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "service.cli", "serve", "--config", str(self.config),
                stdout=subprocess.PIPE, stderr=err, env=env, start_new_session=True,
            )  # fmt: skip
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"gateway exited before it was ready; see {self.log}")
                if found := READY.search(line.decode(errors="replace")):
                    self.smtp_port, self.http_port = int(found.group(1)), int(found.group(2))
                    break
        self._drain = asyncio.create_task(self._discard(self.proc.stdout))

    @staticmethod
    async def _discard(stream: asyncio.StreamReader) -> None:
        while await stream.read(65536):
            pass

    async def kill(self) -> None:
        """SIGKILL the whole process group: gateway, fork server, filter processes."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(60):
                await self.proc.wait()
        except TimeoutError:
            await self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # leftovers of the group, if any

    def filter_pids(self) -> list[int]:
        """The filter processes: the gateway's grandchildren (children of its fork server)."""
        if self.proc is None:
            return []
        parents = _parents()
        children = {pid for pid, ppid in parents.items() if ppid == self.proc.pid}
        return sorted(pid for pid, ppid in parents.items() if ppid in children)


def _parents() -> dict[int, int]:
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces; ppid follows it.
        found[int(entry)] = int(stat.rpartition(")")[2].split()[1])
    return found


class Disk:
    """A tmpfs for the store whose free space can be taken away and given back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(path)],
            capture_output=True,
        )
        self.available = mounted.returncode == 0
        self.why = "" if self.available else mounted.stderr.decode(errors="replace").strip()

    def _remount(self, size: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)

    def fill(self) -> None:
        """No more free space: the mount shrinks to what is in use (ENOSPC on growth)."""
        st = os.statvfs(self.path)
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        self._remount(max(used, st.f_frsize))

    def free(self) -> None:
        self._remount(TMPFS_SIZE)

    def close(self) -> None:
        if self.available:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
