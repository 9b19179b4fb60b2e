"""``parse`` builds the tree the stdlib's parser builds: on generated multiparts and the corpora."""

from __future__ import annotations

from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.mimeparse import parse
from loadtest.corpus import read_corpus

CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def _shape(message: Message) -> list[object]:
    """What a stage can read off a tree: every part's fields, payload, defects and edges."""
    shape: list[object] = []
    for part in message.walk():
        # The payload as stored: get_payload() itself raises on some stdlib trees.
        payload = part._payload  # type: ignore[attr-defined]
        shape.append(
            (
                part.items(),
                payload if isinstance(payload, str) else len(payload),
                [type(d).__name__ for d in part.defects],
                part.preamble,
                part.epilogue,
                part.get_default_type(),
            )
        )
    return shape


def _flat(message: Message) -> bytes | str:
    """The tree written out, or the error writing it raises (the stdlib's own trees can)."""
    try:
        return message.as_bytes()
    except UnicodeError as exc:
        return type(exc).__name__


def _same_as_stdlib(raw: bytes) -> None:
    expected = BytesParser(policy=compat32).parsebytes(raw)
    got = parse(raw)
    assert _flat(got) == _flat(expected)
    assert _shape(got) == _shape(expected)


LINES = [
    "--b\n", "--b--\n", "--b  \n", "--b--\t\n", "--b", "--b--", "--bx\n", "--b--x\n", "-- b\n",
    "\n", "text\n", "Content-Type: text/plain\n", "Content-Type: text/html; charset=x\n",
    "Content-Type: multipart/alternative; boundary=c\n", "--c\n", "--c--\n",
    "Content-Type: message/rfc822\n", "X: y\n", " folded\n", "From x\n", "no header line\n",
    "caf\udce9\n", "Content-Disposition: attachment; filename=a.txt\n",
]  # fmt: skip
HEADS = [
    "Content-Type: multipart/mixed; boundary=b\n",
    'Content-Type: multipart/mixed; boundary="b"\nContent-Transfer-Encoding: 7bit\n',
    "Content-Type: multipart/digest; boundary=b\n",
    "Content-Type: multipart/mixed; boundary=b\nContent-Transfer-Encoding: base64\n",
    "Content-Type: multipart/mixed\n",
]


@settings(max_examples=3000)
@given(st.sampled_from(HEADS), st.lists(st.sampled_from(LINES), max_size=24))
def test_generated_multiparts_parse_as_the_stdlib_parses_them(head: str, lines: list[str]) -> None:
    raw = ("Subject: s\n" + head + "\n" + "".join(lines)).encode("ascii", "surrogateescape")
    _same_as_stdlib(raw)


@pytest.mark.parametrize(
    "raw",
    [
        # A "From " line last in a part's header block is pushed back into its body.
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n folded\nFrom x\n\n--b--\n",
        # A header block holding 8-bit body text: kept as bytes, not decoded.
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\ncaf\xe9\n x\nno header\n\ny\n--b--\n",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\nx\n--b--\n",  # two in a row
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n",  # no close boundary
        b"Content-Type: multipart/mixed; boundary=b\n\n--b--\n",  # no start boundary
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\r\n\r\nx\r\n--b--\r\n",
    ],
)
def test_found_differences_stay_fixed(raw: bytes) -> None:
    _same_as_stdlib(raw)


def test_a_plain_multipart_is_split_here() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\n\npre\n--b\nContent-Type: text/plain\n\n"
        b"one\n\n--b\n\ntwo\n--b--\nafter\n"
    )
    _same_as_stdlib(raw)
    message = parse(raw)
    assert [p.get_payload() for p in message.get_payload()] == ["one\n", "two"]
    assert (message.preamble, message.epilogue) == ("pre", "after\n")


@pytest.mark.corpus
@pytest.mark.parametrize("corpus", ["spamassassin", "csdmc2010", "nazario_phishing0"])
def test_every_corpus_message_parses_as_the_stdlib_parses_it(corpus: str) -> None:
    root = CORPORA / corpus
    if not root.is_dir():
        pytest.skip(f"no corpus at {root}")
    for item in read_corpus(root):
        raw = item.data.split(b"\n", 1)[1] if item.data.startswith(b"From ") else item.data
        _same_as_stdlib(raw)
