"""The sample corpus generator: deterministic, labelled, readable, with viruses."""

from __future__ import annotations

from pathlib import Path

from filters.mail import Mail
from loadtest.corpus import read_corpus
from loadtest.generate import generate


def test_same_seed_same_corpus(tmp_path: Path) -> None:
    generate(tmp_path / "a", 40, seed=3)
    generate(tmp_path / "b", 40, seed=3)
    a = sorted(p.read_bytes() for p in (tmp_path / "a").rglob("*.eml"))
    b = sorted(p.read_bytes() for p in (tmp_path / "b").rglob("*.eml"))
    assert a == b and len(a) == 40


def test_corpus_is_labelled_and_readable(tmp_path: Path) -> None:
    generate(tmp_path, 120, seed=1, viruses=4)
    items = list(read_corpus(tmp_path))
    assert len(items) == 120
    labels = [i.label for i in items]
    assert 20 < labels.count("spam") < 70
    mails = [Mail.from_file_bytes(i.data) for i in items]
    assert not any(m.malformed for m in mails)
    assert all(m.recipients and m.recipients[0].endswith("@example.test") for m in mails)
    infected = [i for i in items if b'filename="scan.zip"' in i.data
                or b'filename="update.com"' in i.data]  # fmt: skip
    assert len(infected) == 4 and all(i.label == "spam" for i in infected)
