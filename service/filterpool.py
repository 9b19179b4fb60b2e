"""A supervised filter pool: a dead or hung filter process is replaced and its work sent again.

``ProcessPoolExecutor`` marks itself broken for good when one child dies
(``kill -9``, the kernel's OOM killer) and fails every future in it with
``BrokenProcessPool``; left alone, filtering stops until a restart. Here a
broken pool is replaced at once (by the caller that notices, or by
``watch`` within half a second) and each failed call is submitted again.

A call caught in a break is not blamed: it is run again *alone* (no other
call in the pool), and only a call that breaks or hangs the pool while alone,
in a pool that then proves it can run a trivial call, raises
``FilterCrashed``; so one poison message cannot condemn the innocent
messages that shared its pool, and a pool that cannot run at all (a policy
file that no longer loads) condemns nobody: filtering waits, readiness is
red. Replacements back off only while fresh pools keep failing to run (a
child that dies at start-up must not spin the CPU); a working pool that is
killed is replaced at once, however often.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger("mailmoat.filter")

T = TypeVar("T")

WATCH_SECONDS = 0.5
BURST_WINDOW = 60.0
BURST_RESTARTS = 5
MAX_PAUSE = 30.0
PING_TIMEOUT = 30.0
"""Seconds a fresh pool has to run a trivial call before it counts as unable to run."""


class FilterCrashed(RuntimeError):
    """Filtering this message broke or hung a filter process while it ran alone."""


class FilterPool:
    """Runs filter calls in ``processes`` child processes (0: one thread), replacing dead ones.

    ``hard_timeout`` bounds one call in seconds: the pool running a call that
    takes longer is killed and replaced, and the call fails (process mode only;
    a thread cannot be killed).
    """

    def __init__(
        self,
        processes: int,
        initializer: Callable[..., None],
        initargs: tuple[Any, ...],
        *,
        hard_timeout: float = 300.0,
        on_restart: Callable[[], None] = lambda: None,
    ) -> None:
        self.processes = processes
        self.hard_timeout = hard_timeout
        self.on_restart = on_restart
        self.restarts = 0
        self._initializer = initializer
        self._initargs = initargs
        self._recent: list[float] = []
        self._paused_until = 0.0
        self._failing = False  # the last fresh pool could not run a trivial call
        self._shared = 0  # calls running in the pool with others
        self._alone = asyncio.Lock()  # held by a call that must run by itself
        self._idle = asyncio.Condition()
        self._executor: Executor = self._make()

    def _make(self) -> Executor:
        if self.processes == 0:
            return ThreadPoolExecutor(1, thread_name_prefix="mailmoat-filter")
        context = multiprocessing.get_context("forkserver")
        # The server imports the filter code once; each child forks from it, already warm.
        context.set_forkserver_preload([self._initializer.__module__])
        return ProcessPoolExecutor(
            self.processes, mp_context=context, initializer=self._initializer,
            initargs=self._initargs,
        )  # fmt: skip

    # --- state ----------------------------------------------------------------------

    def alive(self) -> bool:
        """True when filtering can run now: the pool is not broken and no child is dead."""
        executor = self._executor
        if self._failing or time.monotonic() < self._paused_until:
            return False
        if isinstance(executor, ProcessPoolExecutor):
            if executor._broken:
                return False
            return all(p.is_alive() for p in list((executor._processes or {}).values()))
        return True

    def pids(self) -> list[int]:
        """The filter children's process ids (for operators and the chaos benchmark)."""
        executor = self._executor
        if isinstance(executor, ProcessPoolExecutor):
            return list(executor._processes or {})
        return []

    # --- running --------------------------------------------------------------------

    async def start(self) -> None:
        """Start the processes now, not on the first message: readiness then tells the truth."""
        if self.processes > 0:
            await self._healthy()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the pool; resubmitted (alone) if the pool breaks under it."""
        await self._wait_pause()
        async with self._alone:  # a call running alone keeps new shared calls out
            self._shared += 1
        executor = self._executor
        try:
            result = await self._call(executor, fn, args)
            self._failing = False
            return result
        except (BrokenProcessPool, TimeoutError):
            self._replace(executor, "a filter process died or hung")
        finally:
            self._shared -= 1
            async with self._idle:
                self._idle.notify_all()
        return await self._run_alone(fn, args)

    async def _run_alone(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        async with self._alone:
            async with self._idle:
                await self._idle.wait_for(lambda: self._shared == 0)
            while True:
                await self._wait_pause()
                executor = self._executor
                try:
                    return await self._call(executor, fn, args)
                except BrokenProcessPool as exc:
                    self._replace(executor, "a filter process died while filtering one message")
                    if await self._healthy():
                        raise FilterCrashed("the filter process died on this message") from exc
                except TimeoutError as exc:
                    self._replace(executor, "a filter process hung on one message")
                    if await self._healthy():
                        limit = f"{self.hard_timeout:g} s"
                        raise FilterCrashed(f"filtering took longer than {limit}") from exc

    async def _healthy(self) -> bool:
        """Whether the current pool runs a trivial call: if not, no message is to blame."""
        await self._wait_pause()
        executor = self._executor
        try:
            async with asyncio.timeout(PING_TIMEOUT):
                await asyncio.get_running_loop().run_in_executor(executor, os.getpid)
        except (BrokenProcessPool, TimeoutError):
            self._replace(executor, "a new filter process could not run")
            self._failing = True
            return False
        self._failing = False
        return True

    async def _call(
        self, executor: Executor, fn: Callable[..., T], args: tuple[Any, ...] = ()
    ) -> T:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(executor, fn, *args)
        if not isinstance(executor, ProcessPoolExecutor):
            return await future
        try:
            async with asyncio.timeout(self.hard_timeout):
                return await future
        except TimeoutError:
            _kill_children(executor)
            raise

    async def _wait_pause(self) -> None:
        delay = self._paused_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def _replace(self, broken: Executor, reason: str) -> None:
        """Swap in a new pool, once per broken one (many callers see the same break)."""
        if broken is not self._executor:
            return
        now = time.monotonic()
        self._recent = [t for t in self._recent if now - t < BURST_WINDOW] + [now]
        # Back off only while fresh pools cannot run at all (a crash loop at start-up); kills
        # of working pools, however many, are answered with a new pool at once.
        if self._failing and len(self._recent) > BURST_RESTARTS:
            pause = min(MAX_PAUSE, 2.0 ** (len(self._recent) - BURST_RESTARTS))
            self._paused_until = now + pause
        self.restarts += 1
        log.error("%s; filter pool replaced (restart %d)", reason, self.restarts)
        if isinstance(broken, ProcessPoolExecutor):
            _kill_children(broken)
        broken.shutdown(wait=False, cancel_futures=True)
        self._executor = self._make()
        self.on_restart()

    async def watch(self) -> None:
        """Replace a broken pool even when no call is waiting on it (readiness turns green)."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            executor = self._executor
            if isinstance(executor, ProcessPoolExecutor) and not self.alive():
                self._replace(executor, "a filter process died")
                await self._healthy()  # start the new children now, and learn if they can run

    def close(self) -> None:
        """Stop now: a child stuck on a message is killed (the message stays spooled)."""
        if isinstance(self._executor, ProcessPoolExecutor):
            _kill_children(self._executor)
        self._executor.shutdown(wait=True, cancel_futures=True)


def _kill_children(executor: ProcessPoolExecutor) -> None:
    for pid in list(executor._processes or {}):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
