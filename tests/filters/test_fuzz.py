"""Every byte string yields a verdict: generated messages and mutants of real corpus mail.

Two sources of hostile input: hypothesis builds MIME-shaped messages from
fragments that have broken parsers before (8-bit header values, RFC 2231
parameters, nested multiparts, bad transfer encodings, zips) plus plain random
bytes; and a mutation corpus built here from a few shared-corpus messages
(seeded, so a failure reproduces) flips, inserts and splices bytes where
parsers look hardest: header values and MIME boundaries.
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filters.facts import NO_FACTS
from filters.mail import Envelope, Mail
from filters.model import TokenModel, tokens
from filters.pipeline import evaluate
from filters.policy import PolicyConfig, load_policy
from filters.runtime import Policy
from filters.verdict import Verdict
from tests.filters.test_model import synthetic

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "spamassassin"
_ENVELOPE = Envelope(client_ip="192.0.2.1", mail_from="a@b.example", rcpt_tos=("u@example.test",))


def _zip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", data)
    return buf.getvalue()


@pytest.fixture(scope="module", params=["defaults", "example"])
def policy(request: pytest.FixtureRequest) -> Policy:
    """The built-in defaults, and the shipped example policy (its domain is the envelope's):
    a bulk cap without a threshold of its own raised there, and nowhere in the defaults."""
    from filters.training import train

    model = train(synthetic(40), seed=3, corpus="synthetic")
    if request.param == "defaults":
        return Policy.from_config(PolicyConfig()).with_model(model)
    config = load_policy(Path(__file__).resolve().parents[2] / "examples" / "policy.toml")
    return Policy.from_config(config.model_copy(update={"model": None})).with_model(model)


def _verdict_of(raw: bytes, policy: Policy) -> Verdict:
    """The whole pipeline plus every view a stage or the gateway reads."""
    mail = Mail.from_file_bytes(raw, _ENVELOPE)
    verdict = evaluate(mail, NO_FACTS, policy)
    assert isinstance(verdict, Verdict)
    assert isinstance(verdict.explain(), str)
    views = (mail.headers, mail.subject, mail.from_address, mail.recipients, mail.defects)
    assert all(v is not None for v in views)
    assert isinstance(policy.model, TokenModel) and tokens(mail)
    return verdict


_HEADER_VALUES = st.sampled_from(
    [
        b"attachment; filename=\xe9t\xe9.txt",
        b"attachment; filename*=utf-8''%E9%ZZ",
        b"attachment; filename*0*=x''a; filename*1=b",
        b'inline; filename="a\\"b"; size=-1',
        b"text/plain; charset=\xff\xfe",
        b'text/plain; charset="utf-8"; format=flowed',
        b"multipart/mixed; boundary=\xe9",
        b'multipart/mixed; boundary=""',
        b'application/zip; name="x.zip"',
        b"=?utf-8?B?w6ljb2xl?= =?bogus?Q?=ZZ?=",
        b"base64",
        b"quoted-printable",
        b"\x00\x01\x02",
        b"",
    ]
)
_HEADER_NAMES = st.sampled_from(
    [b"Content-Type", b"Content-Disposition", b"Content-Transfer-Encoding", b"Subject", b"From",
     b"To", b"Received", b"Message-ID", b"X-\xff", b"List-Unsubscribe"]
)  # fmt: skip


@st.composite
def _messages(draw: st.DrawFn) -> bytes:
    """A MIME-shaped message whose header values and bodies come from known trouble."""
    headers = draw(st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES | st.binary(max_size=60))))
    head = b"".join(name + b": " + value + b"\n" for name, value in headers)
    parts = draw(
        st.lists(
            st.tuples(
                st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=4),
                st.binary(max_size=200) | st.just(_zip(b"hello")) | st.just(b"<" * 500),
            ),
            max_size=4,
        )
    )
    body = b"".join(
        b"--b\n" + b"".join(n + b": " + v + b"\n" for n, v in ph) + b"\n" + payload + b"\n"
        for ph, payload in parts
    )
    tail = draw(st.sampled_from([b"--b--\n", b"", b"--b"]))
    top = b"Content-Type: multipart/mixed; boundary=b\n" if parts else b""
    return top + head + b"\n" + body + tail


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_messages())
def test_mime_shaped_input_yields_a_verdict(raw: bytes, policy: Policy) -> None:
    _verdict_of(raw, policy)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=3000))
def test_any_bytes_yield_a_verdict(raw: bytes, policy: Policy) -> None:
    _verdict_of(raw, policy)


def _mutants(seed_messages: list[bytes], count: int, seed: int) -> list[bytes]:
    """Seeded mutants: byte flips, 8-bit bytes in headers, truncations, splices, repeats."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        raw = bytearray(rng.choice(seed_messages))
        for _ in range(rng.randint(1, 4)):
            kind = rng.randrange(5)
            at = rng.randrange(len(raw) + 1)
            if kind == 0 and raw:
                raw[min(at, len(raw) - 1)] = rng.randrange(256)
            elif kind == 1:
                end = raw.find(b"\n\n")
                at = rng.randrange(max(1, end))
                raw[at:at] = bytes(rng.randrange(128, 256) for _ in range(rng.randint(1, 6)))
            elif kind == 2:
                del raw[at:]
            elif kind == 3:
                other = rng.choice(seed_messages)
                start = rng.randrange(len(other))
                raw[at:at] = other[start : start + rng.randint(1, 400)]
            else:
                raw[at:at] = raw[at : at + rng.randint(1, 60)] * rng.randint(2, 50)
        out.append(bytes(raw))
    return out


@pytest.mark.corpus
def test_mutants_of_corpus_mail_yield_a_verdict(policy: Policy) -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    lines = (CORPUS / "labels.tsv").read_text().splitlines()
    seeds = [(CORPUS / line.split("\t")[1]).read_bytes() for line in lines[::600]]
    for raw in _mutants(seeds, 400, seed=14):
        _verdict_of(raw, policy)


def test_eight_bit_content_disposition_is_an_attachment() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n"
        b"Content-Disposition: attachment; filename=\xe9t\xe9.txt\n\nhello\n--x--\n"
    )
    (attachment,) = Mail(raw).attachments
    assert attachment.data == b"hello" and attachment.filename is not None
