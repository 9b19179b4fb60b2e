"""Envelopes for replayed mail: from its headers, or mapped into a test domain to avoid relaying.

The sender is the ``Return-Path`` (the original envelope sender, which
corpora keep) or else the ``From`` address, or the null sender when neither
holds an address. Recipients come from ``To`` and ``Cc``. With a test
domain every recipient becomes ``<local part>@<domain>`` (a local part that
is not a plain dot-atom is replaced by a stable hash of it), and a message
with no recipient goes to ``replay@<domain>``. The mapping depends on the
message alone, so the same corpus always gives the same envelopes.
"""

from __future__ import annotations

import email
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import getaddresses

from loadtest.corpus import CorpusError, CorpusItem, ErrorSink, Label
from loadtest.smtpclient import Envelope, wire

NO_RECIPIENT = "replay"
_ADDRESS = re.compile(r"^[\x21-\x7e]+@[A-Za-z0-9.-]+$")  # printable ASCII, a plain domain
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A corpus message ready to send: its envelope and its bytes in SMTP wire form."""

    name: str
    label: Label | None
    envelope: Envelope
    payload: bytes  # CRLF, dot-stuffed, ending in "." (loadtest.smtpclient.wire)
    size: int  # the message's size as stored, for reports


def _addresses(values: Iterable[str]) -> list[str]:
    """Plain ASCII addresses from header values, in order, without repeats or ``<>``."""
    found = [addr.strip("<> ") for _, addr in getaddresses([str(v) for v in values])]
    return list(dict.fromkeys(a for a in found if _ADDRESS.match(a) and "<" not in a))


def _mapped(address: str, domain: str) -> str:
    local = address.rpartition("@")[0].lower()
    if not _LOCAL.match(local) or len(local) > 64:
        digest = hashlib.sha256(local.encode("utf-8", "surrogateescape")).hexdigest()
        local = f"r{digest[:12]}"
    return f"{local}@{domain}"


def envelope_of(data: bytes, domain: str | None = None) -> Envelope | None:
    """The envelope to send ``data`` with; None when it names no recipient and no domain is set."""
    end = _HEADER_END.search(data)
    head = email.message_from_bytes(data[: end.start() if end else len(data)])
    senders = _addresses(head.get_all("Return-Path", []) + head.get_all("From", []))
    rcpts = _addresses(head.get_all("To", []) + head.get_all("Cc", []))
    if domain is not None:
        rcpts = list(dict.fromkeys(_mapped(r, domain) for r in rcpts)) or [
            f"{NO_RECIPIENT}@{domain}"
        ]
    if not rcpts:
        return None
    return Envelope(senders[0] if senders else "", tuple(rcpts))


def without_from_line(data: bytes) -> bytes:
    """``data`` without an mbox ``From `` line: it is storage, not part of the message."""
    if data.startswith(b"From "):
        return data[data.find(b"\n") + 1 :] if b"\n" in data else b""
    return data


def prepare(items: Iterable[CorpusItem], domain: str | None, on_error: ErrorSink) -> list[Prepared]:
    """Every corpus message that can be sent; one with no recipient is reported and skipped."""
    prepared = []
    for item in items:
        data = without_from_line(item.data)
        envelope = envelope_of(data, domain)
        if envelope is None:
            on_error(CorpusError(item.path, "no recipient in To or Cc (give --domain to map one)"))
            continue
        prepared.append(Prepared(item.name, item.label, envelope, wire(data), len(data)))
    return prepared
