"""The token model: an L2-regularised logistic regression over token presence, in numpy.

Each message becomes a set of tokens (body words, subject words, selected
header words prefixed with the header name, header names present, URL hosts,
attachment types). Training fits one weight per token seen in at least
``min_df`` training messages, and beside it each token's Robinson spam
probability for a Fisher combination as bogofilter's (see ``TokenModel``);
scoring is a dict lookup per token, a short chi-squared tail and a sigmoid.
A vocabulary (not hashing) keeps the saved model explainable: every weight
has its token next to it.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from filters.mail import Mail
from filters.rules import RULES
from filters.tokenscan import (
    NO_EVIDENCE,
    SLOT_DTYPE,
    add_header_tokens,
    add_header_words,
    add_mime_structure,
    add_tags,
    add_url_pieces,
    add_words,
    chi2_q,
    fill_slots,
    sum_tokens,
)

MODEL_VERSION = 3
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
    received = add_header_tokens(out, mail.headers, _MAX_RECEIVED, _MAX_HEADER)
    add_header_words(out, "subject:", mail.subject.lower(), ascii=False)
    text = mail.text[:_MAX_TEXT]
    # The whole text lower-cased is shared with other stages; a cut one is not.
    words = add_words(out, mail.text_lower if len(text) == len(mail.text) else text.lower())
    add_tags(out, mail.html[:_MAX_TEXT].lower())
    for host in mail.domains:
        out.add("url:" + host)
        out.add("urld:" + _registered(host))
    urls = mail.urls
    add_url_pieces(out, urls, _MAX_URLS)
    for attachment in mail.attachments:
        out.add("att:" + attachment.content_type)
        if attachment.filename and "." in attachment.filename:
            out.add("attext:" + attachment.filename.rsplit(".", 1)[1].lower()[:10])
    add_mime_structure(out, mail.raw[:_MAX_RAW].lower())
    if text:
        eight_bit = 0 if text.isascii() else len(text.encode("utf-8")) - len(text)
        out.add(f"8bit:{min(10, round(20 * eight_bit / len(text)))}")
    out.add(f"words:{min(12, words.bit_length())}")
    out.add(f"urls:{min(8, len(urls).bit_length())}")
    out.update(_alignment(mail, " ".join(received)))
    if fired is None:
        fired = (rule.symbol for rule in RULES if rule.check(mail) is not None)
    out.update("rule:" + symbol for symbol in fired)
    return out


# Robinson's smoothing and Fisher's minimum deviation, bogofilter's defaults: a token seen
# n times with spam share p counts as (S * X + n * p) / (S + n); only tokens at least
# MIN_DEV from 0.5 enter the combined score.
ROBINSON_S = 0.0178
ROBINSON_X = 0.52
MIN_DEV = 0.375
_EVIDENCE_CLIP = 1e-6


def fisher_logit(found: Iterable[str], evidence: dict[str, float]) -> float:
    """Robinson-Fisher combined spamminess of the tokens' evidence, as a logit (0: no evidence).

    As bogofilter: Fisher's chi-squared test that the tokens' spam
    probabilities are not uniformly small (H) against that their ham
    probabilities are not (S); the indicator is ``(1 + H - S) / 2``.
    """
    found_f = [f for f in map(evidence.get, found) if f is not None]
    if not found_f:
        return 0.0
    n = len(found_f)
    ham = chi2_q(-2.0 * sum(map(math.log, found_f)), n)
    spam = chi2_q(-2.0 * sum(map(math.log, map((1.0).__sub__, found_f))), n)
    return _indicator_logit(ham, spam)


def _indicator_logit(ham: float, spam: float) -> float:
    score = min(1.0 - _EVIDENCE_CLIP, max(_EVIDENCE_CLIP, (1.0 + ham - spam) / 2.0))
    return math.log(score / (1.0 - score))


def _slots(weights: dict[str, float], evidence: dict[str, float]) -> npt.NDArray[np.void]:
    """Every token of a model in one hash table, for ``tokenscan.sum_tokens``.

    Keyed by the tokens' own string hashes (this process's; the table is built
    at load), at most half full. Two tokens of one model sharing a 64-bit
    hash would lose one (about one model in 10^9); a message token taken for
    another is as likely, as in any hashed token model.
    """
    tokens = [*weights, *(t for t in evidence if t not in weights)]
    size = 1 << max(4, (2 * len(tokens)).bit_length())
    w = np.zeros(len(tokens))
    w[: len(weights)] = list(weights.values())
    f = np.array([evidence.get(t, np.nan) for t in tokens])
    strong = ~np.isnan(f)
    log_f = np.full(len(tokens), NO_EVIDENCE)
    log_1mf = np.zeros(len(tokens))
    log_f[strong], log_1mf[strong] = np.log(f[strong]), np.log1p(-f[strong])
    slots = np.zeros(size, dtype=SLOT_DTYPE)
    fill_slots(slots, tokens, w, log_f, log_1mf)
    return slots


def robinson(spam_share: float, n: float) -> float:
    """A token's smoothed spam probability from its spam share ``p`` over ``n`` messages."""
    return (ROBINSON_S * ROBINSON_X + n * spam_share) / (ROBINSON_S + n)


def spam_share(f: float, n: float) -> float:
    """The spam share ``p`` behind a smoothed probability ``f`` over ``n`` messages."""
    return (f * (ROBINSON_S + n) - ROBINSON_S * ROBINSON_X) / n


@dataclass(frozen=True)
class TokenModel:
    """Token weights plus a bias, and per-token evidence; ``spam_probability`` is a logistic.

    Two views of the same tokens are summed: the logistic regression's logit
    (``weights`` and ``bias``) and, times ``evidence_weight``, the logit of a
    Robinson-Fisher combination of per-token spam probabilities
    (``evidence``), as bogofilter scores. The regression weighs tokens against
    each other; Fisher's test counts how many tokens agree, which keeps a ham
    message with a few spammy words low where the regression alone can place
    it among spam (the dev-split misses at 0.1% of ham fell from 9.1% to about
    6%). The sum is divided by ``temperature`` first: a regularised regression
    on thousands of tokens is over-confident, and a softer probability leaves
    room for rule scores to move a message across a policy threshold.
    """

    weights: dict[str, float]
    bias: float
    metadata: dict[str, str]
    temperature: float = 3.0
    evidence: dict[str, float] = field(default_factory=dict)
    evidence_weight: float = 0.0
    # How many training messages held each evidence token: how far one more may move it.
    evidence_df: dict[str, int] = field(default_factory=dict)

    def logit(self, mail: Mail, fired: Iterable[str] | None = None) -> float:
        return self.logit_of(tokens(mail, fired))

    def logit_of(self, found: set[str]) -> float:
        """The logit of a message with these tokens: one dict lookup per token, in C."""
        z, strong, log_f, log_1mf = sum_tokens(found, self._slots)
        z += self.bias
        if self.evidence_weight and strong:
            ham, spam = chi2_q(-2.0 * log_f, strong), chi2_q(-2.0 * log_1mf, strong)
            z += self.evidence_weight * _indicator_logit(ham, spam)
        return z

    def logit_once(self, found: set[str]) -> float:
        """``logit_of`` for a model used once (an online update): no table to build first."""
        z = self.bias + sum(map(self.weights.get, found, repeat(0.0)))
        if self.evidence_weight:
            z += self.evidence_weight * fisher_logit(found, self.evidence)
        return z

    @cached_property
    def _slots(self) -> npt.NDArray[np.void]:
        return _slots(self.weights, self.evidence)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the token table: it is keyed by this process's string hashes,
        which another process salts differently; the receiver builds its own."""
        return {key: value for key, value in self.__dict__.items() if key != "_slots"}

    def spam_probability(self, mail: Mail, fired: Iterable[str] | None = None) -> float:
        """``fired``: the symbols of the rules that fire on ``mail``, when already known."""
        z = self.logit(mail, fired) / self.temperature
        # Clamp so exp never overflows on an extreme message.
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def save(self, path: Path) -> None:
        vocab = sorted(self.weights)
        meta = sorted(self.metadata.items())
        evidence = sorted(self.evidence)
        arrays: dict[str, npt.NDArray[Any]] = {
            "version": np.array(MODEL_VERSION),
            **_packed("vocabulary", vocab),
            "weights": np.array([self.weights[t] for t in vocab], dtype=np.float32),
            "bias": np.array(self.bias),
            "temperature": np.array(self.temperature),
            "meta_keys": np.array([k for k, _ in meta], dtype=np.str_),
            "meta_values": np.array([v for _, v in meta], dtype=np.str_),
            **_packed("evidence_tokens", evidence),
            "evidence": np.array([self.evidence[t] for t in evidence], dtype=np.float32),
            "evidence_weight": np.array(self.evidence_weight),
            "evidence_df": np.array([self.evidence_df.get(t, 1) for t in evidence], np.uint32),
        }
        with path.open("wb") as fh:
            np.savez_compressed(fh, allow_pickle=False, **arrays)

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
            vocab = _unpacked(arrays, "vocabulary")
            weights = arrays["weights"].astype(float).tolist()
            meta = dict(
                zip(arrays["meta_keys"].tolist(), arrays["meta_values"].tolist(), strict=True)
            )
            bias = float(arrays["bias"])
            temperature = float(arrays["temperature"])
            evidence_tokens = _unpacked(arrays, "evidence_tokens")
            evidence = arrays["evidence"].astype(float).tolist()
            evidence_weight = float(arrays["evidence_weight"])
            evidence_df = arrays["evidence_df"].astype(int).tolist()
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelError(f"{path}: not a model file: bad or missing {exc}") from None
        if len(vocab) != len(weights) or not len(evidence_tokens) == len(evidence) == len(
            evidence_df
        ):
            raise ModelError(f"{path}: tokens and their values differ in length")
        return cls(
            dict(zip(vocab, weights, strict=True)),
            bias,
            meta,
            temperature,
            dict(zip(evidence_tokens, evidence, strict=True)),
            evidence_weight,
            dict(zip(evidence_tokens, evidence_df, strict=True)),
        )


def _packed(name: str, strings: list[str]) -> dict[str, npt.NDArray[Any]]:
    """Strings as one UTF-8 blob plus their byte lengths: a fixed-width ``np.str_`` array
    pads every token to the longest (a 300-character URL token made 160,000 tokens 200 MB).
    ``surrogatepass`` keeps the lone surrogates that stand for raw header bytes."""
    encoded = [t.encode("utf-8", "surrogatepass") for t in strings]
    return {
        f"{name}_bytes": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        f"{name}_lengths": np.array([len(e) for e in encoded], dtype=np.uint32),
    }


def _unpacked(arrays: dict[str, npt.NDArray[Any]], name: str) -> list[str]:
    blob = arrays[f"{name}_bytes"].tobytes()
    ends = np.cumsum(arrays[f"{name}_lengths"], dtype=np.int64).tolist()
    if ends and ends[-1] != len(blob):
        raise ValueError(f"{name}: lengths do not match the bytes")
    starts = [0, *ends[:-1]]
    return [blob[a:b].decode("utf-8", "surrogatepass") for a, b in zip(starts, ends, strict=True)]


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
