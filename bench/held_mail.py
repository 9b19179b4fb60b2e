"""Quarantine at scale: list and release latency with 100,000 held messages, and the purge.

The customer pages (``/my/``, an administrator's session) are timed in the
same run as the API listing they wrap, so their cost is reported as a ratio.

A real gateway (SQLite store, HTTP API, delivery to a loopback sink) is
started on a store pre-filled with 100,000 held messages. We time API calls
over real HTTP, then expire everything and run the purge while a probe task
measures how late the event loop wakes up (the longest stall) and SMTP
clients keep connecting (EHLO round trips during the purge).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

import aiosmtplib
import httpx
import numpy as np
from result_file import write_result

from loadtest.sink import TraceSink
from quarantine import tokens
from service.app import Gateway
from service.config import GatewayConfig

ROOT = Path(__file__).resolve().parent.parent
BODY = (b"From: x@spammer.example\r\nTo: bob@example.test\r\nSubject: offer {n}\r\n\r\n"
        b"Cheap pills, best prices, order now.\r\n")  # fmt: skip


def fill(db: Path, n: int, now: float) -> None:
    """Insert ``n`` held spam messages straight into the store (fast, outside the gateway)."""
    conn = sqlite3.connect(db)
    with conn:
        for start in range(0, n, 10_000):
            ids = range(start, min(n, start + 10_000))
            conn.executemany(
                "INSERT INTO messages (id, received_at, client_ip, helo, mail_from, rcpt_tos,"
                " size, raw, state, worker) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(f"M{i}", now - i, "192.0.2.1", "h", "x@spammer.example",
                  f'["u{i % 500}@example.test"]', 80, BODY.replace(b"{n}", str(i).encode()),
                  "filtered", 0) for i in ids],
            )  # fmt: skip
            conn.executemany(
                "INSERT INTO quarantine (id, message_id, domain, mail_from, rcpt_tos, category,"
                " never_release, score, hits, quarantined_at, expires_at, state, subject, size,"
                " viruses) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(f"Q{i:06d}", f"M{i}", "example.test", "x@spammer.example",
                  f'["u{i % 500}@example.test"]', "spam", 0, 9.5, "[]", now - i,
                  now + 14 * 86400, "held", f"offer {i}", 80, "[]") for i in ids],
            )  # fmt: skip
            conn.executemany(
                "INSERT INTO held_recipients (held_id, address, domain) VALUES (?,?,?)",
                [(f"Q{i:06d}", f"u{i % 500}@example.test", "example.test") for i in ids],
            )
    conn.close()


def percentiles(samples: list[float]) -> dict[str, float]:
    arr = np.array(samples) * 1000
    return {f"p{q}": round(float(np.percentile(arr, q)), 2) for q in (50, 99)} | {
        "max": round(float(arr.max()), 2), "n": len(samples)
    }  # fmt: skip


async def stall_probe(stop: asyncio.Event, gaps: list[float]) -> None:
    """How late a 1 ms sleep wakes up: the longest gap is the worst stall of the loop."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.001)
        gaps.append(time.perf_counter() - start - 0.001)


async def smtp_probe(port: int, stop: asyncio.Event, times: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
            await smtp.noop()
        times.append(time.perf_counter() - start)
        await asyncio.sleep(0.01)


async def run(n: int, calls: int) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="mailmoat-qbench-"))
    sink = TraceSink(drop=True)
    await sink.start()
    config = GatewayConfig.model_validate({
        "smtp": {"port": 0}, "http": {"port": 0}, "store": {"path": str(tmp / "db.sqlite")},
        "filter": {"processes": 0}, "quarantine": {"purge_interval": 1e9, "digest_interval": 1e9},
        "domains": {"example.test": {"downstream": f"127.0.0.1:{sink.port}"}},
    })  # fmt: skip
    now = time.time()
    gateway = Gateway(config)
    await gateway.start()  # migrates the empty store and runs one (empty) purge
    fill(config.store.path, n, now)
    _, token = gateway.store.write(tokens.create, name="bench", operator=False,
                                   domains=["example.test"], now=now)  # fmt: skip
    auth = {"Authorization": f"Bearer {token}"}
    result: dict[str, object] = {"held": n}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}",
                                 headers=auth, timeout=60) as http:  # fmt: skip
        lists, filtered, releases = [], [], []
        cursor = None
        for i in range(calls):
            start = time.perf_counter()
            page = (await http.get("/api/v1/quarantine", params={"limit": 50, **(
                {"cursor": cursor} if cursor else {})})).json()  # fmt: skip
            lists.append(time.perf_counter() - start)
            cursor = page["next_cursor"]
            start = time.perf_counter()
            await http.get("/api/v1/quarantine", params={"recipient": f"u{i}@example.test"})
            filtered.append(time.perf_counter() - start)
            start = time.perf_counter()
            done = await http.post(f"/api/v1/quarantine/Q{i * 7:06d}/release", json={})
            releases.append(time.perf_counter() - start)
            assert done.json()["released"], done.text
        result |= {
            "list_page_ms": percentiles(lists),
            "list_by_recipient_ms": percentiles(filtered),
            "release_ms": percentiles(releases),
        }
    result |= await pages(gateway.http_port, token, calls, result)

    with sqlite3.connect(config.store.path) as conn:
        conn.execute("UPDATE quarantine SET expires_at = ?", (now - 1,))
    stop, gaps, ehlo = asyncio.Event(), [], []
    probes = [asyncio.create_task(stall_probe(stop, gaps)),
              asyncio.create_task(smtp_probe(gateway.smtp_port, stop, ehlo))]  # fmt: skip
    start = time.perf_counter()
    purged = await gateway.upkeep.purge()
    seconds = time.perf_counter() - start
    stop.set()
    await asyncio.gather(*probes)
    result |= {
        "purge": {"held_removed": purged[0], "bodies_removed": purged[1],
                  "seconds": round(seconds, 2),
                  "longest_loop_stall_ms": round(max(gaps) * 1000, 2),
                  "smtp_noop_during_purge_ms": percentiles(ehlo)},
    }  # fmt: skip
    await gateway.stop()
    await sink.stop()
    return result


async def pages(port: int, token: str, calls: int, api: dict[str, object]) -> dict[str, object]:
    """The HTML pages an administrator opens, against the API calls they are built on."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as web:
        form = (await web.get("/my/signin")).text
        csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        signed = await web.post("/my/admin-signin", data={"token": token, "csrf": csrf})
        assert signed.status_code == 303, signed.text
        listing, by_user, message = [], [], []
        for i in range(calls):
            start = time.perf_counter()
            assert (await web.get("/my/")).status_code == 200
            listing.append(time.perf_counter() - start)
            start = time.perf_counter()
            await web.get("/my/", params={"recipient": f"u{i}@example.test"})
            by_user.append(time.perf_counter() - start)
            start = time.perf_counter()
            assert (await web.get(f"/my/messages/Q{i * 7 + 1:06d}")).status_code == 200
            message.append(time.perf_counter() - start)
    found = {"list_page_ms": percentiles(listing), "list_by_recipient_ms": percentiles(by_user),
             "message_page_ms": percentiles(message)}  # fmt: skip
    ratio = {
        key: round(found[key]["p50"] / api[key]["p50"], 2)  # type: ignore[index]
        for key in ("list_page_ms", "list_by_recipient_ms")
    }
    return {"web_pages": found | {"p50_ratio_to_api": ratio}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=200, help="timed calls of each kind")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/quarantine.json")
    args = parser.parse_args()
    result = asyncio.run(run(args.messages, args.calls))
    write_result(args.out, {"benchmark": "quarantine", **result})


if __name__ == "__main__":
    main()
