"""The compiled body normalisation computes what its bytes-operations version did."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from filters.bodynorm import normalise_bytes
from filters.signatures import normalise

_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_ZERO_RUNS = re.compile(rb"00+")
_DIGIT_OR_AT = re.compile(rb"[0@]")


def _reference(data: bytes) -> bytes:
    """``filters.signatures.normalise`` as it was before it was compiled (after encoding)."""
    data = b" ".join(data.split())
    data = _ZERO_RUNS.sub(b"0", data.translate(_DIGITS_TO_ZERO))
    pieces: list[bytes] = []
    done = 0
    for match in _DIGIT_OR_AT.finditer(data):
        if match.start() < done:
            continue
        start = data.rfind(b" ", 0, match.start()) + 1
        end = data.find(b" ", match.start())
        end = len(data) if end < 0 else end
        if b"@" in data[start:end]:
            pieces += (data[done:start], b"@")
        elif end - start >= 12:
            pieces += (data[done:start], b"~")
        else:
            pieces.append(data[done:end])
        done = end
    pieces.append(data[done:])
    return b"".join(pieces)


pieces = st.sampled_from(
    [b"a", b"b", b"0", b"7", b"99", b"@", b" ", b"  ", b"\t", b"\n", b"\r\n", b"\x0b", b"\x0c",
     b"\x1c", b"\xc3\xa9", b"~", b"abcdefghijk", b"x1y2z3w4v5u6"]
)  # fmt: skip


@settings(max_examples=4000)
@given(st.lists(pieces, max_size=40).map(b"".join))
def test_normalised_bytes_are_the_reference(data: bytes) -> None:
    assert normalise_bytes(data) == _reference(data)


@settings(max_examples=1000)
@given(st.binary(max_size=200))
def test_any_bytes_normalise_as_the_reference(data: bytes) -> None:
    assert normalise_bytes(data) == _reference(data)


def test_noise_is_replaced_and_words_kept() -> None:
    text = "Dear  Bob,\n order 12345 ships to bob@example.com; ref a1b2c3d4e5f6g7 today"
    assert normalise(text) == b"dear bob, order 0 ships to @ ref ~ today"
    assert normalise("") == b"" and normalise(" \t\n") == b""
