"""Replay against the real gateway on loopback: counts, known FP/FN, open-loop rate, safe CLI."""

from __future__ import annotations

import asyncio
import email
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from loadtest.cli import main
from loadtest.corpus import CorpusError, read_corpus
from loadtest.envelopes import Prepared, prepare
from loadtest.feed import feed, labelled_queue_ids
from loadtest.generate import SPAM_DOMAINS, generate
from loadtest.replay import Live, ReplayConfig, replay
from loadtest.report import summarize
from loadtest.schedule import Bounds
from loadtest.sink import TraceSink
from service.app import Gateway
from slamonitor.config import SlaSettings
from slamonitor.periods import Month
from slamonitor.report import build
from store.store import Store
from tests.service.gatewayfixtures import gateway_config

MISSED_SPAM = "coin-moon.example"  # not blacklisted: its spam is delivered (false negatives)
BLOCKED_HAM = "supplier.example"  # blacklisted: its ham is held (false positives)
POLICY = f"""
blacklist = {[d for d in SPAM_DOMAINS if d != MISSED_SPAM] + [BLOCKED_HAM]!r}

[domains."example.test".heuristics]
thresholds = {{ quarantine = 1000.0 }}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus")
    generate(path, 60, seed=3, viruses=4)
    return path


@pytest.fixture
def messages(corpus: Path) -> list[Prepared]:
    errors: list[CorpusError] = []
    found = prepare(read_corpus(corpus), "example.test", errors.append)
    assert not errors and len(found) == 60
    return found


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[int, int]]:
    """A real gateway on loopback whose example.test downstream is a free port; yields both."""
    (tmp_path / "policy.toml").write_text(POLICY)
    sink_port = free_port()
    gw = Gateway(gateway_config(tmp_path, sink_port))
    await gw.start()
    yield gw.smtp_port, sink_port
    await gw.stop()


def expected_outcome(messages: list[Prepared]) -> tuple[int, int, int]:
    """(held, false positives, false negatives) that the policy must give, read off the corpus."""
    held = fp = fn = 0
    for m in messages:
        head = email.message_from_bytes(m.payload.split(b"\r\n\r\n")[0])
        virus = m.label == "spam" and not str(head["From"]).startswith("offers@")
        blocked = str(head["From"]).rpartition("@")[2] != MISSED_SPAM and (
            m.label == "spam" or str(head["From"]).endswith(BLOCKED_HAM)
        )
        if virus or blocked:
            held += 1
            fp += m.label == "ham"
        else:
            fn += m.label == "spam"
    return held, fp, fn


async def test_counts_add_up_and_fp_fn_match_the_known_outcome(
    gateway: tuple[int, int], messages: list[Prepared]
) -> None:
    smtp_port, sink_port = gateway
    config = ReplayConfig(
        target=("127.0.0.1", smtp_port), sink=("127.0.0.1", sink_port),
        bounds=Bounds(count=60), concurrency=5, drain=30, drain_idle=2,
    )  # fmt: skip
    summary = summarize(await replay(config, messages))
    held, fp, fn = expected_outcome(messages)
    assert fp > 0 and fn > 0 and held > fp  # the corpus exercises every case
    counts = summary["counts"]
    assert counts["sent"] == 60 == counts["delivered"] + counts["held"] + counts["refused"]
    assert (counts["refused"], counts["held"]) == (0, held) and not summary["smtp_errors"]
    found = summary["classification"]
    ham = sum(1 for m in messages if m.label == "ham")
    assert (found["ham"], found["spam"]) == (ham, 60 - ham)
    assert (found["false_positives"], found["false_negatives"]) == (fp, fn)
    assert found["false_negatives_by_action"] == {"deliver": fn}
    assert found["hm_percent"] == round(100 * fp / ham, 4)
    assert found["sm_percent"] == round(100 * fn / (60 - ham), 4)
    assert all(BLOCKED_HAM not in name for name in found["false_negative_examples"])
    assert summary["delivered_actions"] == {"deliver": 60 - held}
    trips = summary["latency_ms"]["round_trip"]
    assert trips["count"] == 60 - held and trips["p50"] <= trips["max"]
    # New quarantine accounts get a notice from the gateway: mail at the sink without a trace.
    assert summary["sink"]["untraced"] >= 0 and summary["sink"]["repeats"] == 0


async def test_open_loop_holds_its_rate(gateway: tuple[int, int], messages: list[Prepared]) -> None:
    smtp_port, sink_port = gateway
    config = ReplayConfig(
        target=("127.0.0.1", smtp_port), sink=("127.0.0.1", sink_port),
        bounds=Bounds(count=30), rate=30.0, concurrency=4, drain=30, drain_idle=2,
    )  # fmt: skip
    result = await replay(config, messages)
    summary = summarize(result)
    assert summary["counts"]["sent"] == 30 and summary["run"]["mode"] == "open"
    # The plan is exact whatever the load: one arrival every 1/30 s from the first.
    planned = sorted(r.scheduled for r in result.records if r.scheduled is not None)
    assert len(planned) == 30
    assert [round(t - planned[0], 6) for t in planned] == [round(i / 30, 6) for i in range(30)]
    # Sends never run ahead of the plan; how far behind depends on the box, so it is
    # reported (lag), not asserted.
    assert all(r.started >= r.scheduled for r in result.records if r.scheduled is not None)
    assert summary["schedule"]["lag_ms"] is not None


async def test_count_loops_the_corpus_and_duration_ends_a_closed_loop(
    messages: list[Prepared],
) -> None:
    target = TraceSink()
    await target.start()
    try:
        looped = await replay(
            ReplayConfig(target=("127.0.0.1", target.port), sink=None, bounds=Bounds(count=150)),
            messages,
        )
        timed = await replay(
            ReplayConfig(target=("127.0.0.1", target.port), sink=None, bounds=Bounds(duration=0.3)),
            messages,
        )
    finally:
        await target.stop()
    assert sorted(r.index for r in looped.records) == list(range(150))
    assert all(r.message == r.index % 60 and r.accepted for r in looped.records)
    assert set(target.arrivals) >= {r.trace for r in looped.records}
    assert timed.records and all(r.accepted for r in timed.records)
    assert timed.finished - timed.started < 10  # it stopped taking messages at 0.3 s


@pytest.mark.parametrize("rate", [None, 2000.0])
async def test_stop_ends_sending_early_and_keeps_what_was_sent(
    messages: list[Prepared], rate: float | None
) -> None:
    target = TraceSink()
    await target.start()
    live, stop = Live(), asyncio.Event()

    async def stop_after_some() -> None:
        while live.sent < 20:  # bounded: the replay below sends far more than 20
            await asyncio.sleep(0.01)
        stop.set()

    config = ReplayConfig(
        target=("127.0.0.1", target.port), sink=None, bounds=Bounds(count=1_000_000), rate=rate
    )
    try:
        result, _ = await asyncio.gather(
            replay(config, messages, live=live, stop=stop), stop_after_some()
        )
    finally:
        await target.stop()
    assert result.stopped and 20 <= len(result.records) < 100_000
    assert summarize(result)["run"]["stopped_early"] is True


async def test_an_unreachable_target_fails_every_message_without_hanging(
    messages: list[Prepared],
) -> None:
    config = ReplayConfig(
        target=("127.0.0.1", free_port()), sink=None, bounds=Bounds(count=6), concurrency=3
    )
    summary = summarize(await replay(config, messages))
    assert summary["counts"]["sent"] == 6 == summary["counts"]["refused"]
    assert summary["smtp_errors"] == {"ConnectionRefusedError": 6}
    assert summary["classification"] is None


def test_cli_refuses_a_remote_target_without_allow_remote(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "--corpus", str(corpus), "--to", "192.0.2.1:25"]) == 2
    assert "not a loopback address" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["replay", "--corpus", str(corpus), "--to", "nonsense"])
    assert "expected HOST:PORT" in capsys.readouterr().err


async def test_cli_writes_json_and_html(
    gateway: tuple[int, int], corpus: Path, tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    smtp_port, sink_port = gateway
    out = tmp_path / "report"
    argv = ["replay", "--corpus", str(corpus), "--to", f"127.0.0.1:{smtp_port}",
            "--sink", f"localhost:{sink_port}", "--domain", "example.test", "--count", "20",
            "--concurrency", "4", "--drain", "30", "--drain-idle", "2", "--shuffle", "--seed", "5",
            "--json", str(out / "r.json"), "--html", str(out / "r.html")]  # fmt: skip
    # The command runs its own event loop, so it goes to a thread while the gateway runs here.
    assert await asyncio.to_thread(main, argv) == 0
    report = json.loads((out / "r.json").read_text())
    assert report["counts"]["sent"] == 20 and report["run"]["corpus_errors"] == 0
    assert set(report) >= {"throughput", "latency_ms", "smtp_errors", "classification",
                           "stage_hits", "schedule"}  # fmt: skip
    page = (out / "r.html").read_text()
    assert 'src="data:image/png;base64,' in page
    # The JSON stays in its own file: the page links it and shows no raw dump.
    assert '<a href="r.json">' in page and "<pre>" not in page and '"report":' not in page


async def test_replay_labels_give_the_sla_report_its_fp_and_fn(
    gateway: tuple[int, int], messages: list[Prepared], tmp_path: Path
) -> None:
    smtp_port, sink_port = gateway
    config = ReplayConfig(
        target=("127.0.0.1", smtp_port), sink=("127.0.0.1", sink_port),
        bounds=Bounds(count=60), concurrency=5, drain=30, drain_idle=2,
    )  # fmt: skip
    result = await replay(config, messages)
    store_path = tmp_path / "gateway.db"  # where the gateway fixture keeps its store
    assert len(labelled_queue_ids(result)) == 60
    assert feed(store_path, result) == 60
    assert feed(store_path, result) == 60  # labels are upserted: feeding twice changes nothing
    now = time.time()
    store = Store(store_path)
    try:
        month = Month.parse(time.strftime("%Y-%m", time.gmtime(now)))
        report = build(store.engine, month, SlaSettings(), now=now)
    finally:
        store.close()
    _, fp, fn = expected_outcome(messages)
    levels = report.data["levels"]
    assert isinstance(levels, dict)
    assert (levels["false_positives"]["errors"], levels["false_negatives"]["errors"]) == (fp, fn)
