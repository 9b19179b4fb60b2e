"""Mail: an immutable, lazily parsed view of one message and its SMTP envelope.

Parsing uses the stdlib ``email`` parser with the ``compat32`` policy: it is
several times faster than ``policy.default`` and it records defects instead of
raising. Every view (headers, text, URLs, attachments) is computed on first
use, so a stage that only needs the envelope never pays for MIME. No input
makes a ``Mail`` raise: what cannot be parsed sets ``malformed`` and a defect.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr
from functools import cached_property
from itertools import islice
from typing import Any

from filters.mimeparse import parse

_URL_RE = re.compile(r"""(?:https?://|www\.)[^\s<>"'()\[\]{}]{2,2000}""", re.IGNORECASE)
_HOST_END_RE = re.compile(r"[/?#:@]")
_LONG_S = "\u017f"  # "ſ": matches "s" case-insensitively
_URL_LOWER_RE = re.compile(r"""(?:https?://|www\.)[^\s<>"'()\[\]{}]{2,2000}""")
# Address lists in the forms most mail uses: ``a@b``, ``<a@b>``, ``Name <a@b>`` and
# ``"Name" <a@b>``, comma-separated. For these ``email.utils`` answers what
# ``_simple_addresses`` does, several times slower; anything else (comments, routes,
# groups, quoted local parts, escapes, odd spacing) still goes to ``email.utils``.
_ADDRESS = r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_WORDS = r"[A-Za-z0-9]+(?: +[A-Za-z0-9]+)*"
_QUOTED = r'"[^"\\\r\n]*"'
_ITEM = rf"(?:{_WORDS}|{_QUOTED}) *<{_ADDRESS}>|<{_ADDRESS}>|{_ADDRESS}"
_SPACE = r"[ \t\r\n]*"  # what email.utils skips between items: not \f or \v
_SIMPLE_LIST_RE = re.compile(rf"{_SPACE}(?:{_ITEM})(?:{_SPACE},{_SPACE}(?:{_ITEM}))*{_SPACE}")
# The same items, capturing: name as words, name quoted, address after a name, alone in
# angle brackets, bare.
_SIMPLE_ADDRESS_RE = re.compile(
    rf'(?:({_WORDS})|"([^"\\\r\n]*)") *<({_ADDRESS})>|<({_ADDRESS})>|({_ADDRESS})'
)
# A tag cannot hold "<": without that, every "<" of a run would scan up to 2,000 characters
# for a ">" (20 MB of "<" took 45 s); with it each character is looked at a bounded number
# of times.
_TAG_RE = re.compile(r"<[^<>]{0,2000}>")
_IMG_RE = re.compile(r"<img\b", re.IGNORECASE)
_ENTITY_RE = re.compile(r"&(nbsp|amp|lt|gt|quot|#\d{1,5});", re.IGNORECASE)
_ENTITIES = {"nbsp": " ", "amp": "&", "lt": "<", "gt": ">", "quot": '"'}
# MIME parts looked at: what a stage keeps per part (decoded bytes, text) stays bounded by
# the message size, and the part count bounds the per-part overhead.
MAX_PARTS = 1000
# Header values longer than this are truncated for matching; the raw bytes stay intact.
_MAX_HEADER_CHARS = 16_384


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the SMTP session said about a message, as opposed to its headers."""

    client_ip: str | None = None
    helo: str | None = None
    mail_from: str = ""
    rcpt_tos: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TextPart:
    """One decoded text part; ``html`` parts keep their markup in ``text``."""

    content_type: str
    text: str

    @property
    def html(self) -> bool:
        return self.content_type == "text/html"


@dataclass(frozen=True)
class Attachment:
    """A non-text part: its declared name and type, decoded size, digests and bytes."""

    filename: str | None
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @cached_property
    def md5(self) -> str:
        """Hex MD5 of the decoded bytes: the digest ClamAV ``.hdb`` signatures use."""
        return hashlib.md5(self.data, usedforsecurity=False).hexdigest()

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _domain_of(address: str) -> str:
    """The lower-cased domain of an address, or '' when it has none."""
    _, _, domain = address.rpartition("@")
    return domain.strip().strip(">").lower() if "@" in address else ""


def _decode_payload(part: Message) -> bytes:
    """The transfer-decoded payload of a leaf part; broken encodings yield what survives."""
    try:
        payload = part.get_payload(decode=True)
    except (UnicodeError, ValueError, TypeError):
        # compat32 re-encodes a payload holding surrogates as ASCII even when not decoding,
        # which fails once the text also holds other non-ASCII characters; the stored text
        # is then all there is.
        payload = getattr(part, "_payload", None)
    if isinstance(payload, bytes):
        return payload
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _mentions(part: Message, word: str, *headers: str) -> bool:
    """Whether any of these headers holds ``word`` at all: without it, no parameter has its name.

    Parsing a part's parameters to find none costs more than the rest of
    reading the part; most parts have no file name and many no charset.
    """
    return any(word in str(part.get(header, "")).lower() for header in headers)


def _filename(part: Message) -> str | None:
    """The part's declared file name as text, or None; 8-bit or broken parameters never raise."""
    if not _mentions(part, "name", "content-disposition", "content-type"):
        return None
    try:
        name = part.get_filename()
    except Exception:  # RFC 2231 decoding of hostile parameters: treat as unnamed
        return None
    return None if name is None else str(name)


def _charset(part: Message) -> str | None:
    """The declared charset, or None when it is absent or not even text."""
    if not _mentions(part, "charset", "content-type"):
        return None
    try:
        charset = part.get_content_charset()
    except Exception:  # a Header-valued or malformed Content-Type parameter
        return None
    return charset if isinstance(charset, str) else None


def _simple_addresses(value: str) -> list[tuple[str, str]] | None:
    """``getaddresses([value])`` when ``value`` is a list of simple forms, else None."""
    if not _SIMPLE_LIST_RE.fullmatch(value):
        return None
    return [
        (" ".join(words.split()) if words else quoted, named or angled or bare)
        for words, quoted, named, angled, bare in _SIMPLE_ADDRESS_RE.findall(value)
    ]


def _to_text(data: bytes, charset: str | None) -> str:
    """Bytes to text in the declared charset, falling back to latin-1 so nothing raises."""
    if charset:
        try:
            return data.decode(charset, "replace")
        except LookupError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def html_to_text(html: str) -> str:
    """Visible text of an HTML part, good enough for tokens and word rules."""
    text = _TAG_RE.sub(" ", html)
    return _ENTITY_RE.sub(lambda m: _ENTITIES.get(m.group(1).lower(), " "), text)


def _find_urls(text: str) -> list[str]:
    """``_URL_RE.findall(text)``, visiting only where "http" or "www." starts.

    A case-insensitive pattern without a literal prefix tests every character;
    on lower-cased text ``str.find`` jumps to the candidates and the
    case-sensitive pattern is tried only there: same matches, same order, a
    fraction of the time. That holds when lower-casing keeps every offset
    (only U+0130 lower-cases to two characters, which makes the text longer)
    and no character outside ASCII matches a letter of "https" or "www"
    case-insensitively (only U+017F, long s, does); ``tests/filters/test_mail``
    checks both claims over every code point.
    """
    low = text.lower()
    if not text.isascii() and (len(low) != len(text) or _LONG_S in text):
        return _URL_RE.findall(text)
    found: list[str] = []
    http, www = low.find("http"), low.find("www.")
    while http >= 0 or www >= 0:
        start = www if http < 0 or 0 <= www < http else http
        match = _URL_LOWER_RE.match(low, start)
        pos = match.end() if match else start + 1
        if match:
            found.append(text[start:pos])
        if 0 <= http < pos:
            http = low.find("http", pos)
        if 0 <= www < pos:
            www = low.find("www.", pos)
    return found


class Mail:
    """An immutable view of one message; every property is parsed on first use."""

    __slots__ = ("__dict__", "envelope", "raw")

    raw: bytes
    envelope: Envelope

    def __init__(self, raw: bytes, envelope: Envelope | None = None) -> None:
        object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "envelope", envelope or Envelope())

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Mail is immutable (tried to set {name!r})")

    @classmethod
    def from_file_bytes(cls, data: bytes, envelope: Envelope | None = None) -> Mail:
        """A Mail from bytes as stored on disk: an mbox ``From `` line is dropped."""
        if data.startswith(b"From "):
            newline = data.find(b"\n")
            data = data[newline + 1 :] if newline >= 0 else b""
        return cls(data, envelope)

    def for_recipients(self, rcpt_tos: tuple[str, ...]) -> Mail:
        """The same message for a subset of its recipients, sharing the parse already done."""
        other = Mail(self.raw, replace(self.envelope, rcpt_tos=rcpt_tos))
        shared = {k: v for k, v in self.__dict__.items() if k != "recipients"}
        other.__dict__.update(shared)
        return other

    # --- parsing --------------------------------------------------------------

    @cached_property
    def _parsed(self) -> tuple[Message | None, tuple[str, ...]]:
        try:
            message = parse(self.raw)
        except Exception as exc:  # the stdlib parser is not documented to never raise
            return None, (f"unparsable: {type(exc).__name__}",)
        defects = [type(d).__name__ for d in message.defects]
        if b"\x00" in self.raw:
            defects.append("NulByte")
        if not message.keys():
            defects.append("NoHeaders")
        return message, tuple(defects)

    @property
    def message(self) -> Message | None:
        """The stdlib message tree, or None when the bytes could not be parsed at all."""
        return self._parsed[0]

    @cached_property
    def defects(self) -> tuple[str, ...]:
        """Names of every defect the parser found, in the top part and every sub-part."""
        found = list(self._parsed[1])
        if len(self._parts) == MAX_PARTS:
            found.append("TooManyParts")
        for part in self._parts:
            if part is not self.message:
                found += [type(d).__name__ for d in part.defects]
        return tuple(found)

    @property
    def malformed(self) -> bool:
        """True when the message is not well-formed MIME (it still gets a verdict)."""
        return bool(self.defects)

    @cached_property
    def _parts(self) -> tuple[Message, ...]:
        message = self.message
        if message is None:
            return ()
        try:
            return tuple(islice(message.walk(), MAX_PARTS))
        except Exception:  # deeply nested or cyclic structures from hostile input
            return (message,)

    # --- headers --------------------------------------------------------------

    @cached_property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """(name, raw value) pairs in order; names keep their case, values are truncated."""
        message = self.message
        if message is None:
            return ()
        # ``items()`` passes every value through the policy, which returns an ASCII str as
        # it is; only the others (8-bit bytes, Header objects) need it.
        fetch = message.policy.header_fetch_parse
        return tuple(
            (k, (v if isinstance(v, str) and v.isascii() else str(fetch(k, v)))[:_MAX_HEADER_CHARS])
            for k, v in message.raw_items()
        )

    @cached_property
    def _by_name(self) -> dict[str, tuple[str, ...]]:
        """Header values by lower-cased name, in order: one pass instead of one per lookup."""
        index: dict[str, list[str]] = {}
        for key, value in self.headers:
            index.setdefault(key.lower(), []).append(value)
        return {key: tuple(values) for key, values in index.items()}

    def header(self, name: str) -> str | None:
        """The first value of a header, undecoded, or None."""
        values = self._by_name.get(name.lower())
        return values[0] if values else None

    def header_all(self, name: str) -> tuple[str, ...]:
        return self._by_name.get(name.lower(), ())

    def decoded_header(self, name: str) -> str:
        """A header with RFC 2047 encoded words decoded; '' when absent or undecodable."""
        value = self.header(name)
        if value is None:
            return ""
        if "=?" not in value:
            return value
        try:
            return str(make_header(decode_header(value)))
        except Exception:  # bad encoded words are common in spam; keep the raw text
            return value

    @cached_property
    def subject(self) -> str:
        return self.decoded_header("Subject")

    @cached_property
    def from_pair(self) -> tuple[str, str]:
        """``parseaddr`` of the decoded From header: (display name, address as written)."""
        value = self.decoded_header("From")
        simple = _simple_addresses(value)
        return simple[0] if simple else parseaddr(value)

    @cached_property
    def from_address(self) -> str:
        """The address in the From header, lower-cased, or ''."""
        return self.from_pair[1].lower()

    @cached_property
    def sender(self) -> str:
        """The envelope sender if there is one, else the From address (for lists)."""
        return (self.envelope.mail_from or self.from_address).strip("<>").lower()

    @property
    def sender_domain(self) -> str:
        return _domain_of(self.sender)

    @cached_property
    def recipients(self) -> tuple[str, ...]:
        """Envelope recipients, or To/Cc addresses when the envelope has none."""
        if self.envelope.rcpt_tos:
            return tuple(r.strip("<>").lower() for r in self.envelope.rcpt_tos)
        values = [*self.header_all("To"), *self.header_all("Cc")]
        pairs = _simple_addresses(", ".join(values)) if values else []
        if pairs is None:
            pairs = getaddresses(values)
        return tuple(addr.lower() for _, addr in pairs if "@" in addr)

    # --- body -----------------------------------------------------------------

    @cached_property
    def _leaves(self) -> tuple[tuple[TextPart, ...], tuple[Attachment, ...], tuple[Message, ...]]:
        texts: list[TextPart] = []
        attachments: list[Attachment] = []
        attachment_parts: list[Message] = []
        for part in self._parts:
            if part.is_multipart():
                continue
            ctype = part.get_content_type()
            filename = _filename(part)
            # compat32 hands back an ``email.header.Header``, not a str, for a value holding
            # raw 8-bit bytes; ``str`` turns either into text.
            disposition = str(part.get("Content-Disposition") or "").lower()
            data = _decode_payload(part)
            is_attachment = filename is not None or disposition.startswith("attachment")
            if ctype.startswith("text/") and not is_attachment:
                texts.append(TextPart(ctype, _to_text(data, _charset(part))))
            else:
                attachments.append(Attachment(filename, ctype, data))
                attachment_parts.append(part)
        return tuple(texts), tuple(attachments), tuple(attachment_parts)

    @property
    def text_parts(self) -> tuple[TextPart, ...]:
        return self._leaves[0]

    @property
    def attachments(self) -> tuple[Attachment, ...]:
        return self._leaves[1]

    @property
    def attachment_parts(self) -> tuple[Message, ...]:
        """The MIME parts of ``attachments``, in the same order: what a rewrite replaces."""
        return self._leaves[2]

    @cached_property
    def html(self) -> str:
        """All HTML parts joined, markup included (for image and link counts)."""
        return "\n".join(p.text for p in self.text_parts if p.html)

    @cached_property
    def text(self) -> str:
        """Visible text of the message: plain parts, and HTML parts stripped of markup."""
        return "\n".join(html_to_text(p.text) if p.html else p.text for p in self.text_parts)

    @cached_property
    def text_lower(self) -> str:
        """``text.lower()``, shared by the stages that match words case-insensitively."""
        return self.text.lower()

    @cached_property
    def urls(self) -> tuple[str, ...]:
        """Every distinct URL in the text parts (HTML hrefs included), in order."""
        found = _find_urls("\n".join(p.text for p in self.text_parts))
        return tuple(dict.fromkeys(u.rstrip(".,;:!?") for u in found))

    @cached_property
    def domains(self) -> tuple[str, ...]:
        """Distinct host names of the URLs in the body, lower-cased."""
        hosts: dict[str, None] = {}
        for url in self.urls:
            rest = url.split("://", 1)[-1]
            host = _HOST_END_RE.split(rest, maxsplit=1)[0].lower().strip(".")
            if "." in host:
                hosts[host] = None
        return tuple(hosts)

    @property
    def image_count(self) -> int:
        return len(_IMG_RE.findall(self.html)) + sum(
            1 for a in self.attachments if a.content_type.startswith("image/")
        )
