"""Replay a corpus through a gateway into our own sink, to match what went in with what came out.

Sessions take message numbers from one source: in order as fast as the
server answers (closed loop), or on a fixed arrival schedule (open loop,
``rate``), where a message waits for a free session and the wait is recorded
as schedule lag instead of slowing the clock. Every message carries a trace
header; the sink downstream of the gateway notes when each trace arrives and
what the gateway decided (``X-Mailmoat-Action``/``-Symbols``). After sending,
the run waits at most ``drain`` seconds for stragglers; an accepted message
that never arrives was held (quarantined or deleted). Every loop is bounded
by a count or a time limit, and setting ``stop`` ends the sending early (the
messages under way finish, stragglers are still awaited).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loadtest.envelopes import Prepared
from loadtest.replaysink import ReplaySink
from loadtest.schedule import Arrivals, Bounds, arrival_offsets
from loadtest.sender import EHLO_NAME, stamp
from loadtest.smtpclient import GreetingRefused, Outcome, SMTPClient, SMTPError

Address = tuple[str, int]
Job = tuple[int, float | None]  # message number, when the schedule wanted it to start
_BROKEN = (SMTPError, TimeoutError, OSError)  # a session that raised one of these is gone


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    """What to send where, how hard, and for how long."""

    target: Address
    bounds: Bounds
    sink: Address | None = ("127.0.0.1", 2526)  # None: no sink, so no round trips or held mail
    concurrency: int = 20
    rate: float | None = None  # messages per second, open loop; None: closed loop
    arrivals: Arrivals = "constant"
    drain: float = 30.0  # at most this long waiting for stragglers after sending ...
    drain_idle: float = 5.0  # ... and no longer than this after the last arrival
    seed: int = 0
    timeout: float = 60.0  # per SMTP reply
    pipelining: bool = True  # False: lock-step even with a server that offers PIPELINING
    run: str = field(default_factory=lambda: secrets.token_hex(4))  # trace prefix

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.drain < 0 or self.drain_idle <= 0:
            raise ValueError(f"drain must be >= 0 and drain_idle > 0, got {self.drain}, "
                             f"{self.drain_idle}")  # fmt: skip


@dataclass(slots=True)
class Record:
    """One message sent: its trace, times on the run's clock, the final reply, what came out."""

    index: int
    message: int  # which prepared message
    trace: str
    scheduled: float | None  # open loop: when it should have started
    started: float  # MAIL FROM written (or, for a failure, the attempt began)
    replied: float
    code: int  # 0: no reply (connection refused or lost, timeout)
    text: str
    refused_rcpts: int = 0  # recipients refused in an accepted transaction
    arrived: float | None = None
    action: str | None = None
    symbols: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return 200 <= self.code < 300


@dataclass(slots=True)
class Live:
    """Running totals for a progress display; the run only adds to them."""

    sent: int = 0
    accepted: int = 0
    failed: int = 0
    lag: float = 0.0  # the latest message's schedule lag
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    draining: bool = False


@dataclass(slots=True)
class ReplayResult:
    """Everything a report needs: the config, the messages, one record per message sent."""

    config: ReplayConfig
    messages: Sequence[Prepared]
    records: list[Record]
    started: float
    finished: float  # the last reply
    drained: float = 0.0  # seconds spent waiting for stragglers
    stopped: bool = False  # sending was ended early by the caller
    repeats: int = 0  # traces the sink saw more than once (copies per recipient, redelivery)
    untraced: int = 0  # messages at the sink without one of our traces
    copies: int = 0  # content-rule copies at the sink: not counted as deliveries


class _Jobs:
    """Hands message numbers to sessions: in order within the bounds, or on the schedule."""

    def __init__(self, config: ReplayConfig, clock: Callable[[], float], start: float,
                 stop: asyncio.Event) -> None:  # fmt: skip
        self.config, self.clock, self.start, self.stop = config, clock, start, stop
        self._next = 0
        self._queue: asyncio.Queue[Job | None] = asyncio.Queue()
        self._idle = 0  # sessions waiting for the schedule

    async def pace(self) -> None:
        """Open loop: release each message at its scheduled time, then one stop per session."""
        assert self.config.rate is not None
        rng = random.Random(self.config.seed)
        offsets = arrival_offsets(self.config.rate, self.config.arrivals, self.config.bounds, rng)
        for index, offset in enumerate(offsets):
            due = self.start + offset
            # In slices, so a stop is seen soon even between messages of a slow schedule.
            while (delay := due - self.clock()) > 0 and not self.stop.is_set():
                await asyncio.sleep(min(delay, 0.1))
            if self.stop.is_set():
                break
            self._queue.put_nowait((index, due))
        for _ in range(self.config.concurrency):
            self._queue.put_nowait(None)

    def ready(self) -> Job | None:
        """The next message if it may start now, else None."""
        if self._idle:
            return None  # an idle session takes it sooner than a busy one could
        if self.config.rate is None:
            if self.stop.is_set():
                return None
            if not self.config.bounds.admits(self._next, self.clock() - self.start):
                return None
            self._next += 1
            return self._next - 1, None
        try:
            job = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        if job is None:
            self._queue.put_nowait(None)  # the stop is for the session's next wait
        return job

    async def next(self) -> Job | None:
        """The next message, waiting for the schedule; None once the run is over."""
        if self.config.rate is None:
            return self.ready()
        self._idle += 1
        try:
            return await self._queue.get()
        finally:
            self._idle -= 1


class _Run:
    """The sending half of a replay: ``concurrency`` sessions sharing one job source."""

    def __init__(
        self,
        config: ReplayConfig,
        messages: Sequence[Prepared],
        live: Live,
        clock: Callable[[], float],
        stop: asyncio.Event,
    ) -> None:
        self.config, self.messages, self.live, self.clock = config, messages, live, clock
        self.stop = stop
        self.records: list[Record] = []

    async def send(self, start: float) -> None:
        jobs = _Jobs(self.config, self.clock, start, self.stop)
        sessions = [self._session(jobs) for _ in range(self.config.concurrency)]
        pacer = [jobs.pace()] if self.config.rate is not None else []
        await asyncio.gather(*pacer, *sessions)

    def _record(self, job: Job, started: float, code: int, text: str, refused: int = 0) -> None:
        index, scheduled = job
        replied = self.clock()
        self.records.append(Record(index, index % len(self.messages), f"{self.config.run}-{index}",
                                   scheduled, started, replied, code, text, refused))  # fmt: skip
        live = self.live
        live.sent += 1
        if 200 <= code < 300:
            live.accepted += 1
            live.latencies.append(replied - started)
        else:
            live.failed += 1
        if scheduled is not None:
            live.lag = started - scheduled

    async def _connect(self) -> SMTPClient:
        (host, port), config = self.config.target, self.config
        return await SMTPClient.connect(host, port, ehlo_name=EHLO_NAME, timeout=config.timeout,
                                        pipelining=config.pipelining, clock=self.clock)  # fmt: skip

    async def _session(self, jobs: _Jobs) -> None:
        """Take messages until the source runs dry, reconnecting after a broken session."""
        client: SMTPClient | None = None
        failures = 0
        job = await jobs.next()
        try:
            while job is not None:
                if client is None or client.closed:
                    started = self.clock()
                    try:
                        client = await self._connect()
                        failures = 0
                    except GreetingRefused as exc:
                        self._record(job, started, exc.reply.code, exc.reply.text)
                    except _BROKEN as exc:
                        self._record(job, started, 0, f"{type(exc).__name__}: {exc}")
                    if client is None or client.closed:
                        # Back off so a dead target in a timed run does not spin the loop.
                        failures += 1
                        await asyncio.sleep(min(0.01 * 2**failures, 1.0))
                        client, job = None, await jobs.next()
                        continue
                following = jobs.ready()
                await self._send(client, job, following)
                job = following if following is not None else await jobs.next()
        finally:
            if client is not None:
                await client.quit()

    async def _send(self, client: SMTPClient, job: Job, following: Job | None) -> None:
        """One message; a broken session is closed (the caller reconnects for the next one)."""
        message = self.messages[job[0] % len(self.messages)]
        ahead = self.messages[following[0] % len(self.messages)].envelope if following else None
        started = self.clock()
        try:
            outcome: Outcome = await client.send(
                message.envelope, stamp(message.payload, f"{self.config.run}-{job[0]}"), ahead
            )
        except _BROKEN as exc:
            client.close()  # the message written ahead, if any, goes again on a new session
            self._record(job, started, 0, f"{type(exc).__name__}: {exc}")
            return
        self._record(job, outcome.started, outcome.reply.code, outcome.reply.text,
                     len(outcome.refused))  # fmt: skip


async def replay(
    config: ReplayConfig,
    messages: Sequence[Prepared],
    *,
    live: Live | None = None,
    stop: asyncio.Event | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> ReplayResult:
    """Send, wait for stragglers, and match what arrived with what was sent."""
    stop = stop if stop is not None else asyncio.Event()
    if not messages:
        raise ValueError("nothing to send: the corpus has no usable message")
    live = live if live is not None else Live()
    sink = ReplaySink(*config.sink, clock=clock) if config.sink is not None else None
    if sink is not None:
        await sink.start()
    try:
        run = _Run(config, messages, live, clock, stop)
        started = clock()
        await run.send(started)
        records = run.records
        finished = max((r.replied for r in records), default=started)
        result = ReplayResult(config, messages, records, started, finished)
        result.stopped = stop.is_set()
        if sink is not None:
            live.draining = True
            waited = clock()
            accepted = (r.trace for r in records if r.accepted)
            await sink.drain(accepted, config.drain, config.drain_idle)
            result.drained = clock() - waited
            for record in records:
                record.arrived = sink.arrivals.get(record.trace)
                record.action, record.symbols = sink.verdicts.get(record.trace, (None, ()))
            result.repeats, result.untraced = sink.repeats, sink.untraced
            result.copies = sink.copies
    finally:
        if sink is not None:
            await sink.stop()
    return result
