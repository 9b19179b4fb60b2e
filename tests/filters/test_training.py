"""Streaming training: the same model in chunks as at once, memory set by the vocabulary."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest

from filters.mail import Mail
from filters.training import train
from tests.filters.test_model import HAM_WORDS, SPAM_WORDS, message, synthetic


def lazily(n: int) -> Iterator[tuple[Mail, bool]]:
    """``n`` messages over the same twenty words, built one at a time as a reader would."""
    for i in range(n):
        words = SPAM_WORDS if i % 2 else HAM_WORDS
        yield message(words[i % 4 :] + words[: i % 4], "a@b.example"), bool(i % 2)


def test_chunked_training_finds_the_same_model_as_one_chunk() -> None:
    whole = train(synthetic(60), epochs=50)
    chunked = train(synthetic(60), epochs=50, chunk_tokens=40)
    assert whole.weights.keys() == chunked.weights.keys()
    # Only the order of summation differs (and numpy's SIMD sums round by alignment, so even
    # one chunk varies run to run); Adam divides each step by the gradient's size, which
    # carries that rounding into ~1e-5, and once past 1e-4 in a full run. Losing two of the
    # sixty documents (what a chunking bug would do) moves a weight by 2e-2.
    assert all(chunked.weights[t] == pytest.approx(w, abs=1e-3) for t, w in whole.weights.items())
    assert chunked.bias == pytest.approx(whole.bias, abs=1e-3)


def test_samples_are_read_once_from_a_generator() -> None:
    reads = 0

    def stream():  # type: ignore[no-untyped-def]
        nonlocal reads
        for sample in synthetic(40):
            reads += 1
            yield sample

    model = train(stream(), epochs=20)
    assert reads == 40 and model.metadata["ham"] == "20"


def _peak(n: int) -> int:
    tracemalloc.start()
    try:
        train(lazily(n), epochs=5, chunk_tokens=2_000)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_grows_with_the_vocabulary_not_the_message_count() -> None:
    # The same twenty words over and over: more messages, the same vocabulary. What still
    # grows is a length and a label per message (tens of bytes; holding the token sets, as
    # training used to, cost about 80 KB per corpus message).
    small, large = _peak(200), _peak(1_000)
    assert (large - small) / 800 < 200


def test_evidence_keeps_the_most_seen_decisive_tokens() -> None:
    full = train(synthetic(80), epochs=20)
    capped = train(synthetic(80), epochs=20, max_evidence=5)
    assert len(full.evidence) > 5 and len(capped.evidence) == 5
    least_kept = min(capped.evidence_df.values())
    assert all(n <= least_kept for t, n in full.evidence_df.items() if t not in capped.evidence)
