"""The token model learns a tiny synthetic corpus, survives a save/load round trip, and
refuses files it cannot trust; one test checks its ranking quality on the shared corpus."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from filters.mail import Mail
from filters.metrics import roc_auc
from filters.model import MODEL_VERSION, ModelError, TokenModel, fisher_logit, tokens
from filters.tokenscan import chi2_q
from filters.training import train

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "spamassassin"
HAM_WORDS = [
    "meeting",
    "agenda",
    "patch",
    "review",
    "kernel",
    "build",
    "lunch",
    "minutes",
    "release",
    "notes",
]
SPAM_WORDS = [
    "viagra",
    "winner",
    "lottery",
    "cheap",
    "pills",
    "casino",
    "prize",
    "mortgage",
    "refinance",
    "unclaimed",
]


def message(words: list[str], sender: str) -> Mail:
    body = " ".join(words)
    return Mail(f"From: {sender}\nSubject: {words[0]} {words[1]}\n\n{body}\n".encode())


def synthetic(n: int, seed: int = 1) -> list[tuple[Mail, bool]]:
    rng = random.Random(seed)
    samples = []
    for i in range(n):
        spam = i % 2 == 1
        vocab = SPAM_WORDS if spam else HAM_WORDS
        sender = "deals@bulk.example" if spam else "dev@lists.example.org"
        samples.append((message(rng.sample(vocab, 6), sender), spam))
    return samples


@pytest.fixture(scope="module")
def model() -> TokenModel:
    return train(synthetic(60), seed=7, corpus="synthetic")


def test_tokens_prefix_header_words_and_keep_body_words() -> None:
    found = tokens(message(["Cheap", "pills", "http://buy.example.com/x"], "a@b.example"))
    assert {"h:from", "from:b.example", "subject:cheap", "cheap", "pills"} <= found
    assert "url:buy.example.com" in found


def test_tokens_describe_structure_sender_alignment_and_rules() -> None:
    raw = (
        b"From: News <news@shop.example>\nMessage-ID: <1@mail.shop.example>\n"
        b"Received: from mta.shop.example ([192.0.2.7]) by mx; Mon, 2 Sep 2002 10:00:00 +0000\n"
        b"Subject: =?gb2312?B?xOO6ww==?=\nContent-Type: text/plain; charset=gb2312\n\n"
        b"see http://shop.example/deals/today " + b"x" * 25 + b"\n"
    )
    found = tokens(Mail(raw))
    assert {"ip:192.0.2", "encoded:subject:gb2312:b", "charset:gb2312", "ctype:text/plain"} <= found
    assert {"align:received:y", "align:message-id:y", "skip:x 20", "urlp:deals"} <= found
    assert "rule:MISSING_DATE" in found
    assert "rule:MISSING_DATE" not in tokens(Mail(raw), fired=[])


def test_trained_model_separates_the_classes(model: TokenModel) -> None:
    test = synthetic(20, seed=2)
    probabilities = [model.spam_probability(m) for m, _ in test]
    assert all((p > 0.5) == spam for p, (_, spam) in zip(probabilities, test, strict=True))


def test_save_load_round_trip_keeps_scores_and_metadata(model: TokenModel, tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = TokenModel.load(path)
    mail = message(SPAM_WORDS[:6], "deals@bulk.example")
    assert loaded.spam_probability(mail) == pytest.approx(model.spam_probability(mail), abs=1e-6)
    assert loaded.metadata["ham"] == "30" and loaded.metadata["spam"] == "30"
    assert loaded.metadata["seed"] == "7" and loaded.metadata["corpus"] == "synthetic"
    assert "l2=" in loaded.metadata["parameters"] and loaded.metadata["trained_at"]


def test_wrong_version_is_refused_with_the_file_name(model: TokenModel, tmp_path: Path) -> None:
    path = tmp_path / "old.npz"
    model.save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["version"] = np.array(MODEL_VERSION + 1)
    np.savez(path, **arrays)
    with pytest.raises(ModelError, match=r"old\.npz.*version"):
        TokenModel.load(path)


def test_version_1_model_is_refused(model: TokenModel, tmp_path: Path) -> None:
    """Version 1 models were trained on other tokens; scoring with them would be wrong."""
    path = tmp_path / "v1.npz"
    model.save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["version"] = np.array(1)
    np.savez(path, **arrays)
    with pytest.raises(ModelError, match=r"v1\.npz: model version 1, this build reads version 3"):
        TokenModel.load(path)


@pytest.mark.parametrize("content", [None, b"not a zip", b"PK\x03\x04broken"])
def test_missing_or_corrupt_file_is_refused_with_the_file_name(
    tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "model.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=r"model\.npz"):
        TokenModel.load(path)


def test_training_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="one ham and one spam"):
        train([(m, True) for m, _ in synthetic(4)])


@pytest.mark.corpus
def test_auc_on_the_shared_corpus_is_high() -> None:
    if not (CORPUS / "labels.tsv").is_file():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    from loadtest.corpus import read_corpus, split

    items = list(read_corpus(CORPUS))[::2]
    train_items, test_items = split(items, 0.5, seed=3)
    model = train((Mail.from_file_bytes(i.data), i.label == "spam") for i in train_items)
    scores = [model.spam_probability(Mail.from_file_bytes(i.data)) for i in test_items]
    auc = roc_auc([i.label == "spam" for i in test_items], scores)
    assert auc > 0.98  # training time is measured in bench/accuracy.py, not asserted here


def _poisson_tail(chi2: float, n: int) -> float:
    """The chi-squared tail for 2n degrees of freedom as the textbook series."""
    m = chi2 / 2.0
    term = total = np.exp(-m)
    for i in range(1, n):
        term *= m / i
        total += term
    return float(min(total, 1.0))


@pytest.mark.parametrize(("chi2", "n"), [(3.0, 1), (10.0, 5), (100.0, 60), (500.0, 300)])
def test_chi2_tail_matches_the_series(chi2: float, n: int) -> None:
    assert chi2_q(chi2, n) == pytest.approx(_poisson_tail(chi2, n), rel=1e-9)


def test_fisher_evidence_leans_with_the_tokens(model: TokenModel) -> None:
    evidence = {"cheap": 0.99, "pills": 0.98, "agenda": 0.01, "patch": 0.02}
    assert fisher_logit({"cheap", "pills", "unknown"}, evidence) > 2.0
    assert fisher_logit({"agenda", "patch"}, evidence) < -2.0
    assert fisher_logit({"unknown"}, evidence) == 0.0
    # The trained model carries evidence for the synthetic corpus's words, both ways.
    assert model.evidence_weight > 0
    assert model.evidence["viagra"] > 0.9 and model.evidence["agenda"] < 0.1


def test_table_and_dict_logits_agree(model: TokenModel) -> None:
    for mail, _ in synthetic(20, seed=3):
        found = tokens(mail)
        assert model.logit_of(found) == pytest.approx(model.logit_once(found), abs=1e-9)


def test_odd_tokens_survive_a_round_trip(tmp_path: Path) -> None:
    odd = {"subject:caf\udce9": 1.5, "url:" + "a" * 300: -2.0, "h:x-\u00e9": 0.25}
    model = TokenModel(odd, 0.1, {"k": "v"}, 3.0, {"url:" + "b" * 400: 0.99}, 2.0, {})
    model.save(tmp_path / "odd.npz")
    back = TokenModel.load(tmp_path / "odd.npz")
    assert back.weights == pytest.approx(odd) and list(back.evidence) == list(model.evidence)
    assert back.evidence_df == {"url:" + "b" * 400: 1}


def test_a_pickled_model_scores_alike_in_a_process_with_other_string_hashes(
    model: TokenModel, tmp_path: Path
) -> None:
    """The token table is keyed by string hashes, which each process salts: it stays behind."""
    import os
    import pickle
    import subprocess
    import sys

    mail, _ = next(iter(synthetic(1, seed=5)))
    found = tokens(mail)
    here = model.logit_of(found)  # builds this process's table
    (tmp_path / "m.pickle").write_bytes(pickle.dumps((model, sorted(found))))
    script = (
        "import pickle, sys; model, found = pickle.load(open(sys.argv[1], 'rb')); "
        "print(repr(model.logit_of(set(found))))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "m.pickle")],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert float(out.stdout) == pytest.approx(here, abs=1e-9)
