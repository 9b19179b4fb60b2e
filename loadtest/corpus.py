"""Corpus readers: labelled mail in the layouts testers bring, without stopping on a bad file."""

from __future__ import annotations

import mailbox
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

Label = Literal["ham", "spam"]
LABELS_FILE = "labels.tsv"
MBOX_SUFFIXES = (".mbox", ".mbx")  # inside ham/ and spam/: one file holding many messages
_LABELS: dict[str, Label] = {"ham": "ham", "spam": "spam"}
T = TypeVar("T")


class CorpusFormatError(ValueError):
    """The corpus as a whole cannot be read (no such directory, no index); names the path."""


@dataclass(frozen=True, slots=True)
class CorpusItem:
    """One message file: where it is, its label when the corpus has one, and its raw bytes."""

    path: Path
    label: Label | None
    data: bytes
    key: str | None = None  # the message's number inside an mbox file

    @property
    def name(self) -> str:
        """Where the message came from, for reports: the file, with ``#key`` for an mbox."""
        return str(self.path) if self.key is None else f"{self.path}#{self.key}"


@dataclass(frozen=True, slots=True)
class CorpusError:
    """A message or index line that could not be read; the run goes on without it."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


ErrorSink = Callable[[CorpusError], None]


def _parse_index(index: Path, base: Path, report: ErrorSink) -> Iterator[tuple[Label, Path]]:
    """(label, path) pairs of a ``labels.tsv`` or TREC index; entries are relative to ``base``."""
    try:
        lines = index.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise CorpusFormatError(f"{index}: cannot read index: {exc.strerror}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        # labels.tsv separates with a tab so paths may hold spaces; TREC uses a space.
        parts = line.split("\t", 1) if "\t" in line else line.split(None, 1)
        label = _LABELS.get(parts[0].strip().lower())
        if label is None or len(parts) != 2 or not parts[1].strip():
            report(CorpusError(index, f"line {number}: expected 'ham|spam<TAB>path', got {line!r}"))
            continue
        yield label, base / parts[1].strip()


def _walk(folder: Path) -> Iterator[Path]:
    """Every regular file below ``folder`` in a stable order, skipping dot files."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not any(p.startswith(".") for p in path.relative_to(folder).parts):
            yield path


def _is_maildir(folder: Path) -> bool:
    return (folder / "cur").is_dir() or (folder / "new").is_dir()


def _maildir(folder: Path) -> Iterator[Path]:
    """A Maildir's delivered messages: ``cur/`` then ``new/``; ``tmp/`` holds unfinished ones.

    Each message is a file, so it is read as one: a broken message names its own file.
    """
    for sub in ("cur", "new"):
        if (folder / sub).is_dir():
            yield from (p for p in sorted((folder / sub).iterdir())
                        if not p.name.startswith("."))  # fmt: skip


def _is_mbox(path: Path) -> bool:
    """A file that starts with an mbox ``From `` line (a TREC index never does)."""
    try:
        with path.open("rb") as file:
            return file.read(5) == b"From "
    except OSError:
        return False  # read as an index, which reports the error by name


def _mbox(path: Path, label: Label | None, report: ErrorSink) -> Iterator[CorpusItem]:
    """Every message of an mbox file (stdlib ``mailbox``), without its ``From `` line."""
    if not _is_mbox(path):
        report(CorpusError(path, "not an mbox file: it does not start with a 'From ' line"))
        return
    try:
        box = mailbox.mbox(path, create=False)
        try:
            # Read whole, then close: a generator left unfinished would keep the file open.
            messages = [box.get_bytes(key) for key in box.iterkeys()]
        finally:
            box.close()
    except (OSError, mailbox.Error) as exc:
        report(CorpusError(path, f"cannot read mbox: {exc}"))
        return
    for number, data in enumerate(messages, start=1):
        yield CorpusItem(path, label, data, key=str(number))


Entry = tuple[Label | None, Path, bool]  # label, file, whether the file is an mbox


def _folder(folder: Path, label: Label | None) -> Iterator[Entry]:
    """A label's folder: a Maildir, or files of which ``*.mbox`` ones hold many messages."""
    if _is_maildir(folder):
        yield from ((label, p, False) for p in _maildir(folder))
        return
    for path in _walk(folder):
        yield label, path, path.suffix.lower() in MBOX_SUFFIXES


def _entries(path: Path, labels: Path | None, report: ErrorSink) -> Iterator[Entry]:
    """Decide the layout and list its (label, file, is mbox) entries."""
    if labels is not None:
        base = path if path.is_dir() else path.parent
        index = labels if labels.is_absolute() else base / labels
        yield from ((label, p, False) for label, p in _parse_index(index, base, report))
    elif path.is_file() and _is_mbox(path):
        yield None, path, True
    elif path.is_file():
        yield from ((label, p, False) for label, p in _parse_index(path, path.parent, report))
    elif (path / LABELS_FILE).is_file():
        index = path / LABELS_FILE
        yield from ((label, p, False) for label, p in _parse_index(index, path, report))
    elif (path / "ham").is_dir() or (path / "spam").is_dir():
        for label in ("ham", "spam"):
            if (path / label).is_dir():
                yield from _folder(path / label, _LABELS[label])
    elif path.is_dir():
        yield from _folder(path, None)
    else:
        raise CorpusFormatError(f"{path}: no such corpus file or directory")


def read_corpus(
    path: Path,
    labels: Path | None = None,
    *,
    errors: list[CorpusError] | None = None,
    on_error: ErrorSink | None = None,
) -> Iterator[CorpusItem]:
    """Messages of a corpus, in index or file-name order.

    Layouts: a directory with ``labels.tsv`` (``ham|spam<TAB>relative/path``), a
    TREC index file (``spam ../data/inmail.1``, relative to the index's folder), a
    directory with ``ham/`` and ``spam/`` sub-folders (each a folder of files, some
    of which may be ``*.mbox`` files, or a Maildir), a Maildir (``cur/`` and
    ``new/``; unlabelled), an mbox file (unlabelled), or any directory (unlabelled).
    ``labels`` overrides the index; its entries are relative to the corpus directory.
    A file that cannot be read is appended to ``errors`` and passed to ``on_error``;
    the iteration continues.
    """

    def report(error: CorpusError) -> None:
        if errors is not None:
            errors.append(error)
        if on_error is not None:
            on_error(error)

    for label, file, is_mbox in _entries(path, labels, report):
        if is_mbox:
            yield from _mbox(file, label, report)
            continue
        try:
            data = file.read_bytes()
        except OSError as exc:
            report(CorpusError(file, f"cannot read message: {exc.strerror or exc}"))
            continue
        yield CorpusItem(file, label, data)


def split(items: Iterable[T], fraction: float = 0.5, seed: int = 0) -> tuple[list[T], list[T]]:
    """A deterministic random split: ``fraction`` of the items first, the rest second."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    pool: Sequence[T] = list(items)
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    cut = round(len(pool) * fraction)
    return [pool[i] for i in order[:cut]], [pool[i] for i in order[cut:]]
