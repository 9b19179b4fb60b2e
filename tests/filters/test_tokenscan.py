"""The compiled scans find exactly what the regular expressions that define them find.

The regexes below are the specification (they were the tokenizer before it
was compiled); hypothesis draws text from the characters where the scans
could go wrong: the run's middle characters, "!", digits, non-ASCII letters
and digits (word characters for Unicode ``\\w`` only), and lone surrogates as
undecodable header bytes become.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.tokenscan import (
    NO_EVIDENCE,
    SLOT_DTYPE,
    add_header_tokens,
    add_header_words,
    add_mime_structure,
    add_relays,
    add_tags,
    add_url_pieces,
    add_words,
    fill_slots,
    sum_tokens,
)

RUN = re.compile(r"[\w$][\w$'.-]*!?")
HEADER_WORD = re.compile(r"[\w$][\w$'.-]{1,28}[\w$!]")
ASCII_HEADER_WORD = re.compile(HEADER_WORD.pattern, re.ASCII)
RELAY = re.compile(r"\b(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}\b", re.ASCII)
TAG = re.compile(r"<([a-z]{1,10})\b")
URL_PIECE = re.compile(r"[/?&=#.:+_~%-]+")
MIME = (
    ("ctype:", re.compile(rb"content-type:[ \t]*([\w-]{1,30}/[\w.+-]{1,60})")),
    ("charset:", re.compile(rb"charset=[\"']?([\w.:-]{1,40})")),
    ("cte:", re.compile(rb"content-transfer-encoding:[ \t]*([\w-]{1,20})")),
)
ENCODED_WORD = re.compile(r"=\?([\w-]{1,30})\?([bq])\?", re.IGNORECASE)

TRICKY = "ab_$'.-! \t19éßЖ٣²\udce9\ufffd:@/"
texts = st.text(alphabet=TRICKY, max_size=120) | st.text(max_size=60)
long_runs = st.lists(st.sampled_from(["a", "b'", "-", ".", "9", "!", " ", "é"]), max_size=90)


def _runs(text: str) -> tuple[set[str], int]:
    runs = RUN.findall(text)
    words = [r for r in runs if 2 < len(r) < 13]
    skips = {f"skip:{r[0]} {len(r) // 10 * 10}" for r in runs if len(r) > 12}
    return set(words) | skips, len(words)


@settings(max_examples=3000)
@given(texts)
def test_words_are_the_runs_regex(text: str) -> None:
    out: set[str] = set()
    count = add_words(out, text)
    assert (out, count) == _runs(text)


@settings(max_examples=1000)
@given(long_runs)
def test_long_runs_become_skip_tokens(pieces: list[str]) -> None:
    text = "".join(pieces)
    out: set[str] = set()
    count = add_words(out, text)
    assert (out, count) == _runs(text)


@settings(max_examples=3000)
@given(texts, st.booleans())
def test_header_words_are_the_header_regex(value: str, ascii: bool) -> None:
    pattern = ASCII_HEADER_WORD if ascii else HEADER_WORD
    out: set[str] = set()
    add_header_words(out, "to:", value, ascii)
    assert out == {"to:" + w for w in pattern.findall(value)}


def test_header_words_give_back_to_end_on_a_word_character() -> None:
    """The middle takes 28 characters at most, then backs off to a word character or "!"."""
    out: set[str] = set()
    add_header_words(out, "", "a" + "b" * 40 + " x.y- ab.-! c--")
    assert out == {"a" + "b" * 29, "bbbbbbbbbbb", "x.y", "ab.-!"}
    assert out == set(ASCII_HEADER_WORD.findall("a" + "b" * 40 + " x.y- ab.-! c--"))


def test_unicode_letters_are_words_only_outside_headers() -> None:
    out: set[str] = set()
    add_header_words(out, "", "été naïve", ascii=True)
    assert out == set()
    add_header_words(out, "", "été naïve", ascii=False)
    assert out == {"été", "naïve"}


addresses = st.lists(
    st.sampled_from(["1", "12", "123", "1234", ".", "..", " ", "a", "_", "$", "é", "[", "]"]),
    max_size=40,
).map("".join)


@settings(max_examples=3000)
@given(addresses)
def test_relays_are_the_address_regex(value: str) -> None:
    out: set[str] = set()
    add_relays(out, value)
    assert out == {"ip:" + n for n in RELAY.findall(value)}


def test_relays_need_whole_numbers_and_word_boundaries() -> None:
    out: set[str] = set()
    value = "from [10.1.2.3] by 1234.5.6.7, 8.9.10.11x, 9.8.7.6.5 and a1.2.3.4 $7.7.7.7$"
    add_relays(out, value)
    assert out == {"ip:10.1.2", "ip:9.8.7", "ip:7.7.7"} == {"ip:" + n for n in RELAY.findall(value)}


def _headers_reference(
    headers: list[tuple[str, str]], max_received: int, max_chars: int
) -> tuple[set[str], list[str]]:
    """The header loop as it was written in Python, before it was compiled."""
    out: set[str] = set()
    received: list[str] = []
    for name, value in headers:
        lname = name.lower()
        out.add("h:" + lname)
        value = value[:max_chars]
        if lname == "received":
            if len(received) >= max_received:
                continue
            received.append(value.lower())
            out.update("ip:" + n for n in RELAY.findall(value))
        out.update(lname + ":" + w for w in ASCII_HEADER_WORD.findall(value.lower()))
        if "=?" in value:
            out.update(
                f"encoded:{lname}:{c.lower()}:{e.lower()}" for c, e in ENCODED_WORD.findall(value)
            )
    return out, received


names = st.sampled_from(["Received", "RECEIVED", "Subject", "X-Mailer", "To", "ÉTÉ"])
values = texts | st.sampled_from(
    ["from a.example (10.0.0.1) by b", "=?UTF-8?B?w6k=?= =?iso-8859-1?q?x?=", "=?"]
)


@settings(max_examples=1500)
@given(st.lists(st.tuples(names, values), max_size=12), st.integers(0, 4), st.integers(1, 80))
def test_header_tokens_are_the_python_loop(
    headers: list[tuple[str, str]], max_received: int, max_chars: int
) -> None:
    out: set[str] = set()
    received = add_header_tokens(out, headers, max_received, max_chars)
    assert (out, received) == _headers_reference(headers, max_received, max_chars)


tags = st.lists(
    st.sampled_from(["<", "a", "b", "img", "abcdefghij", "k", "1", "_", "$", " ", ">", "é", "/"]),
    max_size=30,
).map("".join)


@settings(max_examples=3000)
@given(tags)
def test_tags_are_the_tag_regex(html: str) -> None:
    out: set[str] = set()
    add_tags(out, html)
    assert out == {"tag:" + t for t in TAG.findall(html)}


mime = st.lists(
    st.sampled_from(
        [b"content-type:", b"charset=", b"content-transfer-encoding:", b" ", b"\t", b"text",
         b"/", b"plain", b"x" * 35, b"y" * 70, b"-", b".", b"+", b":", b'"', b"'", b";", b"\n",
         b"\xe9", b"_", b"8bit", b"content-type:content-type:"]
    ),
    max_size=16,
).map(b"".join)  # fmt: skip


@settings(max_examples=3000)
@given(mime)
def test_mime_structure_is_the_three_patterns(lowered: bytes) -> None:
    out: set[str] = set()
    add_mime_structure(out, lowered)
    expected = {
        prefix + v.decode("ascii", "replace")
        for prefix, pattern in MIME
        for v in pattern.findall(lowered)
    }
    assert out == expected


urls = st.lists(
    st.lists(
        st.sampled_from(["http://", "HTTPS://", "www", ".", "/", "?", "&", "=", "-", "_", "ab",
                         "abcdefghij", "Ж", "x" * 25, "%20", "://"]),
        max_size=14,
    ).map("".join),
    max_size=4,
)  # fmt: skip


@settings(max_examples=2000)
@given(urls, st.integers(0, 5))
def test_url_pieces_are_the_split_pieces(found: list[str], max_urls: int) -> None:
    out: set[str] = set()
    add_url_pieces(out, found, max_urls)
    expected = set()
    for url in found[:max_urls]:
        pieces = URL_PIECE.split(url.partition("://")[2].lower())
        expected |= {"urlp:" + p for p in pieces[1:8] if 2 < len(p) < 20}
    assert out == expected


def _slots(weights: dict[str, float], evidence: dict[str, float]) -> np.ndarray:
    tokens = list(weights)
    log_f = np.array([np.log(evidence[t]) if t in evidence else NO_EVIDENCE for t in tokens])
    log_1mf = np.array([np.log1p(-evidence[t]) if t in evidence else 0.0 for t in tokens])
    slots = np.zeros(16, dtype=SLOT_DTYPE)
    assert fill_slots(slots, tokens, np.array(list(weights.values())), log_f, log_1mf) == 0
    return slots


def test_token_sums_count_known_tokens_and_their_evidence() -> None:
    slots = _slots({"cheap": 1.5, "agenda": -2.0, "h:to": 0.25}, {"cheap": 0.9, "agenda": 0.2})
    z, strong, log_f, log_1mf = sum_tokens({"cheap", "agenda", "h:to", "unknown"}, slots)
    assert z == pytest.approx(-0.25)
    assert strong == 2
    assert log_f == pytest.approx(np.log(0.9) + np.log(0.2))
    assert log_1mf == pytest.approx(np.log(0.1) + np.log(0.8))
    assert sum_tokens(set(), slots) == (0.0, 0, 0.0, 0.0)


def test_a_token_given_twice_is_kept_once() -> None:
    slots = np.zeros(16, dtype=SLOT_DTYPE)
    ones, zeros = np.ones(2), np.zeros(2)
    assert fill_slots(slots, ["same", "same"], ones, zeros, zeros) == 1
    assert sum_tokens({"same"}, slots)[0] == 1.0
