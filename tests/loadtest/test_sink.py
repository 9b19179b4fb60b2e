"""The trace sink: header parsing, arrivals, repeats, drop mode, shutdown, and the CLI server."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys

import aiosmtplib
import pytest

from loadtest.sink import TraceSink, trace_of


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"X-Mailmoat-Trace: run-1\r\nSubject: x\r\n\r\nbody\r\n", "run-1"),
        (b"Received: by mx\r\nx-mailmoat-trace:\trun-2 \r\nSubject: x\r\n\r\n", "run-2"),
        (b"Subject: x\n", None),
        (b"Subject: x\nX-Mailmoat-Trace: run-3\n\nbody\n", "run-3"),
        (b"Subject: x\r\n\r\nX-Mailmoat-Trace: quoted-in-body\r\n", None),
        (b"Subject: x\n\nX-Mailmoat-Trace: quoted-in-body\n", None),
        (b"", None),
    ],
)
def test_trace_of_reads_the_header_block_only(data: bytes, expected: str | None) -> None:
    assert trace_of(data) == expected


async def send(port: int, *bodies: bytes) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
        for body in bodies:
            await smtp.sendmail("alice@sender.test", ["bob@example.test"], body)


async def test_arrivals_keep_the_first_time_and_count_repeats_and_untraced() -> None:
    ticks = iter(range(100))
    sink = TraceSink(clock=lambda: float(next(ticks)))
    await sink.start()
    try:
        await send(sink.port, b"X-Mailmoat-Trace: a\r\n\r\n1", b"X-Mailmoat-Trace: b\r\n\r\n2",
                   b"X-Mailmoat-Trace: a\r\n\r\n3", b"Subject: none\r\n\r\n4")  # fmt: skip
        await sink.wait_for(4, timeout=10)
    finally:
        await sink.stop()
    assert sink.arrivals == {"a": 0.0, "b": 1.0}
    assert (sink.received, sink.repeats, sink.untraced) == (4, 1, 1)


async def test_drop_mode_counts_but_keeps_nothing() -> None:
    sink = TraceSink(drop=True)
    await sink.start()
    try:
        await send(sink.port, b"X-Mailmoat-Trace: a\r\n\r\n1", b"X-Mailmoat-Trace: b\r\n\r\n2")
        await sink.wait_for(2, timeout=10)
    finally:
        await sink.stop()
    assert sink.received == 2 and sink.arrivals == {}


async def test_wait_for_times_out_when_too_few_arrive() -> None:
    sink = TraceSink()
    await sink.start()
    try:
        await send(sink.port, b"X-Mailmoat-Trace: a\r\n\r\n1")
        with pytest.raises(TimeoutError):
            await sink.wait_for(2, timeout=0.2)
    finally:
        await sink.stop()


async def test_stop_closes_open_sessions_and_frees_the_port() -> None:
    sink = TraceSink()
    await sink.start()
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port)
    await smtp.connect()
    await sink.stop()
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await smtp.noop()
    smtp.close()
    again = TraceSink(port=sink.port)  # the same port can be listened on again
    await again.start()
    await again.stop()
    await sink.stop()  # a second stop is harmless


async def test_cli_runs_a_drop_server_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadtest.sink", "--port", "0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = re.search(r"SMTP on 127\.0\.0\.1:(\d+)", proc.stdout.readline())
        assert ready is not None
        await send(int(ready.group(1)), b"Subject: x\r\n\r\nbody")
    finally:
        proc.send_signal(signal.SIGTERM)
        status = await asyncio.to_thread(proc.wait, 30)
        assert proc.stdout is not None
        proc.stdout.close()
    assert status == 0
