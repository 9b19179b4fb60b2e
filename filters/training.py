"""Training the token model in memory bounded by the vocabulary, not by the corpus.

One pass over the samples turns each message into token ids (a dict from
token to id is the only structure that grows, and it grows with the
vocabulary) and appends them to a temporary file; document frequencies are
counted on the way. Tokens seen in fewer than ``min_df`` messages are then
dropped while the file is rewritten compactly, and full-batch Adam on the
L2-regularised mean log loss reads that file in chunks of ``chunk_tokens``
ids each epoch. When everything fits in one chunk it stays in memory. The
optimum is the same as fitting on the whole matrix at once: only the order of
summation differs.
"""

from __future__ import annotations

import math
import tempfile
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from filters.mail import Mail
from filters.model import MIN_DEV, ROBINSON_S, ROBINSON_X, TokenModel, tokens

IntArray = npt.NDArray[np.int32]
KeepArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
_ID = np.dtype(np.uint32)


@dataclass
class _Chunk:
    """A run of whole documents: their token ids, which row each id is in, their labels."""

    cols: IntArray
    rows: IntArray
    y: FloatArray


@dataclass
class _Corpus:
    """Token ids on disk, one run per message, with lengths and labels in memory."""

    file: IO[bytes]
    lengths: array[int]
    labels: array[int]
    chunk_tokens: int

    def chunks(self) -> Iterator[_Chunk]:
        """Whole documents, about ``chunk_tokens`` ids at a time, in order."""
        self.file.seek(0)
        start = 0
        lengths = np.frombuffer(self.lengths, dtype=_ID).astype(np.int64)
        labels = np.frombuffer(self.labels, dtype=np.int8).astype(np.float64)
        while start < len(lengths):
            stop, size = start, 0
            while stop < len(lengths) and (size == 0 or size + lengths[stop] <= self.chunk_tokens):
                size += int(lengths[stop])
                stop += 1
            cols = np.fromfile(self.file, dtype=_ID, count=size).astype(np.int32)
            rows = np.repeat(np.arange(stop - start, dtype=np.int32), lengths[start:stop])
            yield _Chunk(cols, rows, labels[start:stop])
            start = stop


def _tokenise(
    samples: Iterable[tuple[Mail, bool]], out: IO[bytes]
) -> tuple[dict[str, int], array[int], array[int], array[int], array[int]]:
    """Every message's token ids appended to ``out``; (vocabulary, df, spam df, lengths, labels)."""
    vocab: dict[str, int] = {}
    df: array[int] = array("I")
    spam_df: array[int] = array("I")
    lengths: array[int] = array("I")
    labels: array[int] = array("b")
    for mail, is_spam in samples:
        ids = array("I")
        for token in tokens(mail):
            index = vocab.setdefault(token, len(df))
            if index == len(df):
                df.append(0)
                spam_df.append(0)
            df[index] += 1
            spam_df[index] += is_spam
            ids.append(index)
        ids.tofile(out)
        lengths.append(len(ids))
        labels.append(int(is_spam))
    return vocab, df, spam_df, lengths, labels


def _evidence(df: FloatArray, spam_df: FloatArray, spam: int, ham: int) -> FloatArray:
    """Robinson's smoothed spam probability of each token (bogofilter's f(w))."""
    spam_share = spam_df / max(spam, 1)
    ham_share = (df - spam_df) / max(ham, 1)
    p = spam_share / np.maximum(spam_share + ham_share, 1e-12)
    return (ROBINSON_S * ROBINSON_X + df * p) / (ROBINSON_S + df)  # ``model.robinson``, vectorised


def _compact(raw: _Corpus, keep: KeepArray, out: IO[bytes]) -> _Corpus:
    """The same documents with only kept ids, renumbered by ``keep`` (-1: dropped)."""
    lengths: array[int] = array("I")
    for chunk in raw.chunks():
        mapped = keep[chunk.cols]
        kept = mapped >= 0
        mapped[kept].astype(_ID).tofile(out)
        counts = np.bincount(chunk.rows[kept], minlength=len(chunk.y))
        lengths.extend(counts.astype(_ID).tolist())
    out.flush()
    return _Corpus(out, lengths, raw.labels, raw.chunk_tokens)


def _fit(corpus: _Corpus, n_features: int, l2: float, epochs: int) -> tuple[FloatArray, float]:
    """Full-batch Adam on the mean log loss plus ``l2 * |w|^2``; the problem is convex."""
    y_all = np.frombuffer(corpus.labels, dtype=np.int8)
    n = len(y_all)
    share = float(y_all.mean())
    w = np.zeros(n_features)
    b = math.log((share + 1e-3) / (1 - share + 1e-3))
    m = np.zeros(n_features + 1)
    v = np.zeros(n_features + 1)
    lr, beta1, beta2 = 0.05, 0.9, 0.999
    cached = list(corpus.chunks()) if len(corpus.lengths) and _one_chunk(corpus) else None
    for step in range(1, epochs + 1):
        grad = np.zeros(n_features + 1)
        for chunk in cached if cached is not None else corpus.chunks():
            z = b + np.bincount(chunk.rows, weights=w[chunk.cols], minlength=len(chunk.y))
            err = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))) - chunk.y
            grad[:-1] += np.bincount(chunk.cols, weights=err[chunk.rows], minlength=n_features)
            grad[-1] += err.sum()
        grad /= n
        grad[:-1] += 2 * l2 * w
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad * grad
        update = lr * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + 1e-8)
        w -= update[:-1]
        b -= float(update[-1])
    return w, b


def _one_chunk(corpus: _Corpus) -> bool:
    return sum(corpus.lengths) <= corpus.chunk_tokens


def train(
    samples: Iterable[tuple[Mail, bool]],
    *,
    l2: float = 1e-4,
    min_df: int = 3,
    epochs: int = 300,
    temperature: float = 3.0,
    seed: int | None = None,
    corpus: str = "",
    chunk_tokens: int = 1_000_000,
    evidence_weight: float = 2.0,
    max_evidence: int = 500_000,
) -> TokenModel:
    """Fit a model on (mail, is_spam) pairs, read once; ``seed`` and ``corpus`` are recorded.

    Memory: the vocabulary (a dict entry and a few numbers per distinct token)
    plus one chunk of ``chunk_tokens`` ids; the messages themselves are not kept.
    The Fisher evidence keeps at most ``max_evidence`` tokens (the most-seen
    decisive ones; SpamAssassin's 6,046 messages give about 160,000).
    """
    with tempfile.TemporaryFile() as raw_file, tempfile.TemporaryFile() as kept_file:
        vocab, df, spam_df, lengths, labels = _tokenise(samples, raw_file)
        raw_file.flush()
        if not labels or all(labels) or not any(labels):
            raise ValueError("training needs at least one ham and one spam message")
        counts = np.frombuffer(df, dtype=_ID)
        keep = np.full(len(counts), -1, dtype=np.int64)
        kept_ids = np.flatnonzero(counts >= min_df)
        keep[kept_ids] = np.arange(len(kept_ids))
        compact = _compact(_Corpus(raw_file, lengths, labels, chunk_tokens), keep, kept_file)
        w, b = _fit(compact, len(kept_ids), l2, epochs)
    # Drop near-zero weights: they change no decision and bloat the lookup table.
    weights = {
        t: float(w[keep[i]]) for t, i in vocab.items() if keep[i] >= 0 and abs(w[keep[i]]) > 1e-3
    }
    spam = sum(labels)
    f = _evidence(
        counts.astype(np.float64), np.frombuffer(spam_df, dtype=_ID), spam, len(labels) - spam
    )
    strong = np.flatnonzero(np.abs(f - 0.5) >= MIN_DEV)
    if len(strong) > max_evidence:  # keep the most-seen: the model file and workers stay small
        strong = strong[np.argsort(-counts[strong], kind="stable")[:max_evidence]]
    chosen = np.zeros(len(counts), dtype=bool)
    chosen[strong] = True
    evidence = {t: float(f[i]) for t, i in vocab.items() if chosen[i]}
    evidence_df = {t: int(counts[vocab[t]]) for t in evidence}
    params: dict[str, Any] = {
        "l2": l2,
        "min_df": min_df,
        "epochs": epochs,
        "temperature": temperature,
        "evidence_weight": evidence_weight,
        "max_evidence": max_evidence,
    }
    metadata = {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ham": str(len(labels) - spam),
        "spam": str(spam),
        "seed": "" if seed is None else str(seed),
        "corpus": corpus,
        "parameters": ", ".join(f"{k}={v}" for k, v in params.items()),
    }
    return TokenModel(weights, b, metadata, temperature, evidence, evidence_weight, evidence_df)
