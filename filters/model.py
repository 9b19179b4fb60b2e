"""The token model: an L2-regularised logistic regression over token presence, in numpy.

Each message becomes a set of tokens (body words, subject words, selected
header words prefixed with the header name, header names present, URL hosts,
attachment types). Training fits one weight per token seen in at least
``min_df`` training messages; scoring is a dict lookup per token and a sigmoid,
so it needs no numpy at all. A vocabulary (not hashing) keeps the saved model
explainable: every weight has its token next to it.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import compress, repeat
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from filters.mail import Mail
from filters.rules import RULES

MODEL_VERSION = 2
# Runs of word characters; 3 to 12 long are words, longer ones "skip:" tokens (see ``tokens``).
# One plain pattern and a length filter cost half as much as look-around patterns.
_RUN_RE = re.compile(r"[\w$][\w$'.-]*!?")
_HEADER_WORD_RE = re.compile(r"[\w$][\w$'.-]{1,28}[\w$!]")
# Raw header values hold only ASCII and what stands for other bytes (lone surrogates or
# U+FFFD), none of them word characters or digits, so ASCII classes match exactly the
# same there, and cost 40% less than Unicode ones.
_RAW_HEADER_WORD_RE = re.compile(_HEADER_WORD_RE.pattern, re.ASCII)
_TAG_RE = re.compile(r"<([a-z]{1,10})\b")
_IP_RE = re.compile(r"\b(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}\b", re.ASCII)
_ENCODED_WORD_RE = re.compile(r"=\?([\w-]{1,30})\?([bq])\?", re.IGNORECASE)
_IS_WORD = bytes(int(2 < n < 13) for n in range(256))
_IS_LONG = bytes(int(n == 13) for n in range(256))
_URL_PIECE_RE = re.compile(r"[/?&=#.:+_~%-]+")
# MIME structure, read off the lower-cased raw bytes: literal-prefixed patterns scan fast,
# where one case-insensitive alternation costs ten times as much.
_MIME_RES = (
    ("ctype:", re.compile(rb"content-type:[ \t]*([\w-]{1,30}/[\w.+-]{1,60})")),
    ("charset:", re.compile(rb"charset=[\"']?([\w.:-]{1,40})")),
    ("cte:", re.compile(rb"content-transfer-encoding:[ \t]*([\w-]{1,20})")),
)
# Early Received headers carry the relay path; the rest repeat our own hops.
_MAX_RECEIVED = 6
_MAX_HEADER = 400
_MAX_URLS = 20
# Text beyond this is rarely informative and would make huge messages slow.
_MAX_TEXT = 30_000
_MAX_RAW = 200_000


class ModelError(ValueError):
    """A model file is missing, corrupt or of another version; the message names the file."""


def _registered(domain: str) -> str:
    """``example.co.uk`` from ``mail.example.co.uk``; ``example.com`` from ``a.example.com``."""
    labels = domain.strip(".").split(".")
    short_tld = len(labels) > 2 and len(labels[-1]) == 2 and len(labels[-2]) <= 3
    return ".".join(labels[-3:] if short_tld else labels[-2:])


def _alignment(mail: Mail, relays: str) -> list[str]:
    """Whether the From domain shows up in the relay path, Message-ID, Return-Path and so on.

    Legitimate bulk mail (newsletters, vendor announcements) is sent by the
    domain it claims to be from; spam with the same words usually is not.
    """
    sender = mail.from_address.rpartition("@")[2]
    if not sender:
        return ["align:no-from"]
    domain = _registered(sender)
    found = ["align:received:" + ("y" if domain in relays else "n")]
    for name in ("Message-ID", "Return-Path", "Reply-To", "To"):
        value = mail.header(name)
        if value is not None:
            found.append(f"align:{name.lower()}:" + ("y" if domain in value.lower() else "n"))
    return found


def tokens(mail: Mail, fired: Iterable[str] | None = None) -> set[str]:
    """The distinct tokens of a message; prefixes keep header and body words apart.

    Every header contributes its name (``h:x-mailer``) and its words prefixed
    with the name (``received:smtp.example.com``): relay paths and mailers tell
    bulk senders from people better than any body word. On top of that, as in
    SpamBayes: the /24 of each relay (``ip:10.1.2``), the charset of encoded
    header words, the MIME structure (``ctype:``, ``charset:``, ``cte:``), URL
    host and path pieces, a ``skip:`` token for each word too long to be one
    (first character and length in tens: base64 runs, CJK text, obfuscation),
    coarse counts (``8bit:``, ``words:``, ``urls:``), sender alignment
    (``align:``) and the heuristic rules that fire (``rule:SYMBOL``; pass
    ``fired`` when they are already known, so they are not checked twice).
    """
    out: set[str] = set()
    received: list[str] = []
    for name, value in mail.headers:
        lname = name.lower()
        out.add("h:" + lname)
        value = value[:_MAX_HEADER]
        if lname == "received":
            if len(received) >= _MAX_RECEIVED:
                continue
            received.append(value.lower())
            out.update("ip:" + n for n in _IP_RE.findall(value))
        # map over a bound __add__ runs in C; a generator expression is 3x slower here.
        out.update(map((lname + ":").__add__, _RAW_HEADER_WORD_RE.findall(value.lower())))
        if "=?" in value:
            out.update(
                f"encoded:{lname}:{c.lower()}:{e.lower()}"
                for c, e in _ENCODED_WORD_RE.findall(value)
            )
    out.update(map("subject:".__add__, _HEADER_WORD_RE.findall(mail.subject.lower())))
    text = mail.text[:_MAX_TEXT]
    lowered = text.lower()
    runs = _RUN_RE.findall(lowered)
    # Each run's length (13 standing for "longer") as one byte, so picking words and
    # long runs is ``compress`` over a translated byte string, all in C.
    lengths = bytes(map(min, map(len, runs), repeat(13)))
    words = list(compress(runs, lengths.translate(_IS_WORD)))
    out.update(words)
    if 13 in lengths:
        long_runs = compress(runs, lengths.translate(_IS_LONG))
        out.update(f"skip:{w[0]} {len(w) // 10 * 10}" for w in long_runs)
    out.update(map("tag:".__add__, _TAG_RE.findall(mail.html[:_MAX_TEXT].lower())))
    for host in mail.domains:
        out.add("url:" + host)
        out.add("urld:" + _registered(host))
    urls = mail.urls
    for url in urls[:_MAX_URLS]:
        pieces = _URL_PIECE_RE.split(url.partition("://")[2].lower())
        out.update("urlp:" + p for p in pieces[1:8] if 2 < len(p) < 20)
    for attachment in mail.attachments:
        out.add("att:" + attachment.content_type)
        if attachment.filename and "." in attachment.filename:
            out.add("attext:" + attachment.filename.rsplit(".", 1)[1].lower()[:10])
    raw = mail.raw[:_MAX_RAW].lower()
    for prefix, pattern in _MIME_RES:
        out.update(prefix + v.decode("ascii", "replace") for v in set(pattern.findall(raw)))
    if text:
        eight_bit = 0 if text.isascii() else len(text.encode("utf-8")) - len(text)
        out.add(f"8bit:{min(10, round(20 * eight_bit / len(text)))}")
    out.add(f"words:{min(12, len(words).bit_length())}")
    out.add(f"urls:{min(8, len(urls).bit_length())}")
    out.update(_alignment(mail, " ".join(received)))
    if fired is None:
        fired = (rule.symbol for rule in RULES if rule.check(mail) is not None)
    out.update("rule:" + symbol for symbol in fired)
    return out


@dataclass(frozen=True)
class TokenModel:
    """Token weights plus a bias; ``spam_probability`` is the logistic of their sum.

    The sum is divided by ``temperature`` first: a regularised regression on
    thousands of tokens is over-confident, and a softer probability leaves room
    for rule scores to move a message across a policy threshold.
    """

    weights: dict[str, float]
    bias: float
    metadata: dict[str, str]
    temperature: float = 3.0

    def logit(self, mail: Mail, fired: Iterable[str] | None = None) -> float:
        return self.bias + sum(map(self.weights.get, tokens(mail, fired), repeat(0.0)))

    def spam_probability(self, mail: Mail, fired: Iterable[str] | None = None) -> float:
        """``fired``: the symbols of the rules that fire on ``mail``, when already known."""
        z = self.logit(mail, fired) / self.temperature
        # Clamp so exp never overflows on an extreme message.
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def save(self, path: Path) -> None:
        vocab = sorted(self.weights)
        meta = sorted(self.metadata.items())
        with path.open("wb") as fh:
            np.savez_compressed(
                fh,
                version=np.array(MODEL_VERSION),
                vocabulary=np.array(vocab, dtype=np.str_),
                weights=np.array([self.weights[t] for t in vocab], dtype=np.float32),
                bias=np.array(self.bias),
                temperature=np.array(self.temperature),
                meta_keys=np.array([k for k, _ in meta], dtype=np.str_),
                meta_values=np.array([v for _, v in meta], dtype=np.str_),
            )

    @classmethod
    def load(cls, path: Path) -> TokenModel:
        arrays = _read_arrays(path)
        version = int(arrays["version"]) if "version" in arrays else None
        if version != MODEL_VERSION:
            raise ModelError(
                f"{path}: model version {version}, this build reads version "
                f"{MODEL_VERSION}; retrain it with `mailmoat train`"
            )
        try:
            vocab = arrays["vocabulary"].tolist()
            weights = arrays["weights"].astype(float).tolist()
            meta = dict(
                zip(arrays["meta_keys"].tolist(), arrays["meta_values"].tolist(), strict=True)
            )
            bias = float(arrays["bias"])
            temperature = float(arrays["temperature"])
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelError(f"{path}: not a model file: bad or missing {exc}") from None
        if len(vocab) != len(weights):
            raise ModelError(f"{path}: vocabulary and weights differ in length")
        return cls(dict(zip(vocab, weights, strict=True)), bias, meta, temperature)


def _read_arrays(path: Path) -> dict[str, npt.NDArray[Any]]:
    """Every array of an ``.npz`` file; anything else raises ``ModelError`` naming the file."""
    try:
        with path.open("rb") as fh:
            data = np.load(fh, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ModelError(f"{path}: not a model file (a single array, not an .npz)")
            with data:
                return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise ModelError(f"{path}: model file not found") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path}: not a readable model file: {exc}") from None
    except ValueError as exc:
        if isinstance(exc, ModelError):
            raise
        raise ModelError(f"{path}: not a readable model file: {exc}") from None
