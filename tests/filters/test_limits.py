"""Hostile content stays bounded: zip bombs, the per-message time budget, part counts, HTML."""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from filters.antivirus import LIMITS_EXCEEDED, VirusDatabase, scan
from filters.archives import ArchiveLimits
from filters.budget import Deadline
from filters.facts import NO_FACTS
from filters.mail import MAX_PARTS, Mail, html_to_text
from filters.pipeline import BUDGET_SYMBOL, evaluate
from filters.policy import parse_policy
from filters.runtime import Policy
from filters.signatures import SignatureDatabase
from filters.verdict import Action
from tests.mailfactory import make_mail


def overlapping_bomb(inflated_mib: int, entries: int, declared: int = 1) -> bytes:
    """One deflated member of zeros under ``entries`` central-directory entries.

    Every entry points at the same local header and declares ``declared``
    bytes: the shape of the issue-10 bomb (1.43 MB, 20 entries over 1 GiB).
    """
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(1 << 20)
    data = b"".join(squeeze.compress(zeros) for _ in range(inflated_mib)) + squeeze.flush()
    name = b"z.bin"
    local = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, 0, len(data), declared, len(name), 0
    )
    entry = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, 0, len(data), declared, len(name),
        0, 0, 0, 0, 0, 0,
    )  # fmt: skip
    directory = (entry + name) * entries
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, entries, entries, len(directory),
        len(local) + len(name) + len(data), 0,
    )  # fmt: skip
    return local + name + data + directory + end


def _with_zip(data: bytes) -> Mail:
    return make_mail(attachments=(("bomb.zip", "application/zip", data),))


def test_overlapping_central_directory_bomb_inflates_at_most_a_chunk_per_entry() -> None:
    # 20 entries over 64 MiB of zeros: zipfile's own read() inflated 20 x 64 MiB here.
    mail = _with_zip(overlapping_bomb(64, 20))
    assert mail.attachments
    tracemalloc.start()
    try:
        scan(mail, VirusDatabase.builtin())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_declared_sizes_past_the_allowance_are_refused_before_inflating() -> None:
    mail = _with_zip(overlapping_bomb(1, 20, declared=1 << 20))
    found = scan(mail, VirusDatabase.builtin(), ArchiveLimits(max_bytes=4 << 20))
    assert [f.name for f in found] == [LIMITS_EXCEEDED]


def _clock(*readings: float) -> Iterator[float]:
    """Readings in order; the last one repeats."""
    yield from readings
    while True:
        yield readings[-1]


def test_unpacking_stops_with_limits_exceeded_when_the_deadline_passes() -> None:
    ticks = _clock(0.0, 0.0, 100.0)
    deadline = Deadline.after(5.0, lambda: next(ticks))
    mail = _with_zip(overlapping_bomb(1, 3))
    found = scan(mail, VirusDatabase.builtin(), deadline=deadline)
    assert [f.name for f in found] == [LIMITS_EXCEEDED]


def _policy(clock_readings: tuple[float, ...], **limits: object) -> Policy:
    config = parse_policy({"limits": {"time_budget": 5.0, **limits}})
    ticks = _clock(*clock_readings)
    return Policy(
        config, VirusDatabase.builtin(), SignatureDatabase.empty(), None, lambda: next(ticks)
    )


def test_time_budget_skips_the_remaining_stages_and_says_which() -> None:
    verdict = evaluate(make_mail(), NO_FACTS, _policy((0.0, 100.0)))
    assert verdict.action is Action.QUARANTINE
    (hit,) = [h for h in verdict.hits if h.symbol == BUDGET_SYMBOL]
    assert hit.reason == "filtering took over 5 s; not run: signatures, heuristics, content"


def test_time_budget_action_comes_from_the_policy() -> None:
    policy = _policy((0.0, 100.0), time_budget_action="tag_header")
    verdict = evaluate(make_mail(), NO_FACTS, policy)
    assert verdict.action is Action.TAG_HEADER and BUDGET_SYMBOL in verdict.symbols


def test_within_budget_nothing_is_skipped() -> None:
    verdict = evaluate(make_mail(), NO_FACTS, _policy((0.0, 1.0)))
    assert verdict.action is Action.DELIVER and BUDGET_SYMBOL not in verdict.symbols


def test_bad_time_budget_is_refused_naming_the_key() -> None:
    from filters.policy import PolicyError

    with pytest.raises(PolicyError, match=r"limits\.time_budget"):
        parse_policy({"limits": {"time_budget": 0}})


def test_parts_beyond_the_limit_are_not_looked_at() -> None:
    part = b"--b\nContent-Type: application/octet-stream\n\nx\n"
    raw = b"Content-Type: multipart/mixed; boundary=b\n\n" + part * (MAX_PARTS + 500) + b"--b--\n"
    mail = Mail(raw)
    assert len(mail.attachments) < MAX_PARTS and "TooManyParts" in mail.defects


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<<<<b>bold</b>", "<<< bold "),
        ("x < y <z>", "x < y  "),
        ("<p class='x'>hi</p>", " hi "),
        ("<" * 10, "<" * 10),
    ],
)
def test_html_tags_never_span_another_open_bracket(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_example_policy_limits_load(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[limits]\ntime_budget = 2.5\narchive_bytes = 1048576\n")
    from filters.policy import load_policy

    limits = load_policy(path).limits
    assert (limits.time_budget, limits.archive_bytes) == (2.5, 1 << 20)
