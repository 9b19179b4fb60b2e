"""Corpus readers: every layout, label files, bad files reported by name while the run goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.corpus import CorpusError, CorpusFormatError, CorpusItem, read_corpus, split


def write(path: Path, data: bytes = b"Subject: x\n\nbody\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def summary(items: list[CorpusItem]) -> list[tuple[str | None, str]]:
    return [(i.label, i.path.name) for i in items]


def test_labels_tsv_directory_reports_missing_files_and_goes_on(tmp_path: Path) -> None:
    write(tmp_path / "ham" / "1", b"ham one")
    write(tmp_path / "spam" / "2", b"spam two")
    (tmp_path / "labels.tsv").write_text("ham\tham/1\nspam\tspam/gone\nspam\tspam/2\nbogus line\n")
    errors: list[CorpusError] = []
    items = list(read_corpus(tmp_path, errors=errors))
    assert summary(items) == [("ham", "1"), ("spam", "2")]
    assert items[0].data == b"ham one"
    assert [e.path.name for e in errors] == ["gone", "labels.tsv"]
    assert "cannot read message" in str(errors[0]) and "line 4" in str(errors[1])


def test_trec_index_paths_are_relative_to_the_index(tmp_path: Path) -> None:
    write(tmp_path / "data" / "inmail.1")
    write(tmp_path / "data" / "inmail.2")
    index = tmp_path / "full" / "index"
    write(index, b"spam ../data/inmail.1\nham ../data/inmail.2\nspam ../data/inmail.3\n")
    seen: list[CorpusError] = []
    items = list(read_corpus(index, on_error=seen.append))
    assert summary(items) == [("spam", "inmail.1"), ("ham", "inmail.2")]
    assert len(seen) == 1 and "inmail.3" in str(seen[0])


def test_ham_and_spam_folders_are_read_recursively(tmp_path: Path) -> None:
    write(tmp_path / "ham" / "a" / "m1")
    write(tmp_path / "ham" / "m2")
    write(tmp_path / "spam" / "deep" / "er" / "m3")
    write(tmp_path / "spam" / ".hidden")
    items = list(read_corpus(tmp_path))
    assert summary(items) == [("ham", "m1"), ("ham", "m2"), ("spam", "m3")]


def test_unreadable_message_is_reported_and_skipped(tmp_path: Path) -> None:
    write(tmp_path / "ham" / "ok")
    (tmp_path / "ham" / "dir.eml").mkdir()
    (tmp_path / "labels.tsv").write_text("ham\tham/dir.eml\nham\tham/ok\n")
    errors: list[CorpusError] = []
    assert summary(list(read_corpus(tmp_path, errors=errors))) == [("ham", "ok")]
    assert errors[0].path == tmp_path / "ham" / "dir.eml"


def test_labels_option_relative_to_corpus_and_absolute(tmp_path: Path) -> None:
    write(tmp_path / "msgs" / "a")
    write(tmp_path / "msgs" / "b")
    write(tmp_path / "msgs" / "my-labels", f"spam\ta\nham\t{tmp_path / 'msgs' / 'b'}\n".encode())
    relative = list(read_corpus(tmp_path / "msgs", Path("my-labels")))
    absolute = list(read_corpus(tmp_path / "msgs", tmp_path / "msgs" / "my-labels"))
    assert summary(relative) == summary(absolute) == [("spam", "a"), ("ham", "b")]


def test_plain_directory_is_unlabelled_and_missing_corpus_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "x" / "m")
    assert summary(list(read_corpus(tmp_path / "x"))) == [(None, "m")]
    with pytest.raises(CorpusFormatError, match="nowhere"):
        list(read_corpus(tmp_path / "nowhere"))


def test_split_is_deterministic_and_complete() -> None:
    first, second = split(range(100), 0.3, seed=5)
    assert len(first) == 30 and sorted(first + second) == list(range(100))
    assert split(range(100), 0.3, seed=5) == (first, second)
    assert split(range(100), 0.3, seed=6) != (first, second)
    with pytest.raises(ValueError, match="fraction"):
        split([1], 1.5)


MBOX = (
    b"From alice@sender.test Thu Aug 22 12:46:39 2002\n"
    b"Subject: one\n\nfirst body\n>From the quoted line\n\n"
    b"From bob@sender.test Thu Aug 22 12:47:00 2002\n"
    b"Subject: two\n\nsecond body\n\n"
    b"From carol@sender.test Thu Aug 22 12:48:00 2002\n"
    b"Subject: three\n\nthird body\n"
)


def test_maildir_reads_cur_then_new_and_skips_tmp_and_dot_files(tmp_path: Path) -> None:
    box = tmp_path / "Maildir"
    write(box / "cur" / "1700000002.M2.host:2,S", b"Subject: seen\n\n")
    write(box / "cur" / "1700000001.M1.host:2,", b"Subject: older\n\n")
    write(box / "new" / "1700000003.M3.host", b"Subject: unread\n\n")
    write(box / "tmp" / "1700000004.M4.host", b"Subject: half written\n")
    write(box / "new" / ".hidden", b"x")
    items = list(read_corpus(box))
    assert summary(items) == [
        (None, "1700000001.M1.host:2,"),
        (None, "1700000002.M2.host:2,S"),
        (None, "1700000003.M3.host"),
    ]
    assert items[2].data == b"Subject: unread\n\n" and items[2].key is None


def test_maildir_broken_message_names_its_file_and_the_run_goes_on(tmp_path: Path) -> None:
    box = tmp_path / "box"
    write(box / "new" / "b-good")
    (box / "new" / "a-broken").mkdir()  # a directory where a message file should be
    errors: list[CorpusError] = []
    items = list(read_corpus(box, errors=errors))
    assert summary(items) == [(None, "b-good")]
    assert [e.path for e in errors] == [box / "new" / "a-broken"]
    assert "cannot read message" in str(errors[0])


def test_mbox_file_yields_each_message_without_its_from_line(tmp_path: Path) -> None:
    path = write(tmp_path / "archive", MBOX)
    items = list(read_corpus(path))
    assert [(i.label, i.key, i.name) for i in items] == [
        (None, "1", f"{path}#1"),
        (None, "2", f"{path}#2"),
        (None, "3", f"{path}#3"),
    ]
    assert items[0].data.startswith(b"Subject: one\n") and b"\nFrom " not in items[0].data
    assert items[2].data == b"Subject: three\n\nthird body\n"


def test_labelled_folders_may_hold_maildirs_and_mbox_files(tmp_path: Path) -> None:
    write(tmp_path / "ham" / "cur" / "m1", b"Subject: ham in a maildir\n\n")
    write(tmp_path / "spam" / "pitches.mbox", MBOX)
    write(tmp_path / "spam" / "single.eml", b"Subject: a lone file\n\n")
    items = list(read_corpus(tmp_path))
    assert [(i.label, i.path.name, i.key) for i in items] == [
        ("ham", "m1", None),
        ("spam", "pitches.mbox", "1"),
        ("spam", "pitches.mbox", "2"),
        ("spam", "pitches.mbox", "3"),
        ("spam", "single.eml", None),
    ]


def test_broken_mbox_file_is_reported_by_name_and_the_run_goes_on(tmp_path: Path) -> None:
    write(tmp_path / "spam" / "a-broken.mbox", b"Subject: no From line\n\nbody\n")
    write(tmp_path / "spam" / "b-good.mbox", MBOX)
    errors: list[CorpusError] = []
    items = list(read_corpus(tmp_path, errors=errors))
    assert [i.key for i in items] == ["1", "2", "3"]
    assert [e.path.name for e in errors] == ["a-broken.mbox"]
    assert "not an mbox file" in str(errors[0]) and str(tmp_path) in str(errors[0])
