"""The chaos run, small: a real gateway killed, its disk filled, its mail cut off; nothing lost."""

from __future__ import annotations

from pathlib import Path

from loadtest.chaos import ChaosConfig, load_corpus, run_chaos
from loadtest.generate import generate


async def test_nothing_is_lost_or_stuck_under_kills_a_full_disk_and_an_outage(
    tmp_path: Path,
) -> None:
    generate(tmp_path / "corpus", 60, seed=3, viruses=2)
    corpus = load_corpus(tmp_path / "corpus")
    config = ChaosConfig(
        count=300, kills=5, gateway_share=0.4, concurrency=6, outage_seconds=2.0,
        disk_full_seconds=2.0, drain_timeout=60.0, seed=4,
    )  # fmt: skip
    report = await run_chaos(corpus, config, tmp_path / "run")
    assert report["kills"]["gateway"] >= 1 and report["kills"]["filter"] >= 1
    assert report["answered_250"] + report["refused_5xx"] == 300
    assert report["lost"] == 0, report["lost_ids"]
    assert report["stuck_rows"] == {"spooled": 0, "pending": 0}
    assert report["held"] >= 1  # the viruses: held, not delivered, and counted as ended
    assert report["delivered"] + report["held"] == report["answered_250"]
    # A copy twice only where a gateway kill fell between a 250 and the commit after it.
    twice = report["delivered_twice"]
    in_flight = config.concurrency + 20  # client sessions + deliveries in flight per kill
    assert twice["gateway_redelivery"] + twice["client_retry"] <= (
        report["kills"]["gateway"] * in_flight
    )
