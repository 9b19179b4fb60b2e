"""Raw bytes to a ``compat32`` message tree: the stdlib's tree, built with less work.

``email``'s feed parser reads every message one line at a time, through a
stack of generators, and compiles a regular expression for each multipart
boundary it meets (70 us each); on the corpus that was most of the time
spent parsing. ``parse`` returns the tree ``BytesParser(policy=compat32)``
returns, with the same defects, and hands the parser every input it cannot
vouch for (``tests/filters/test_mimeparse.py`` compares the two on the
shared corpora and on generated multiparts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from itertools import pairwise
from typing import Any

# A header block the feed parser would read without a defect: every line a field
# (RFC 5322 name, colon) or a continuation of one; no envelope ``From `` line.
_CLEAN_HEADERS_RE = re.compile(rb"(?:[\041-\071\073-\176]+:[^\n]*\n(?:[ \t][^\n]*\n)*)+")
_FIELD_RE = re.compile(r"([\041-\071\073-\176]+):[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)\n")


class IndexedMessage(Message):
    """A compat32 message whose header lookups lower-case each field name once.

    ``Message.get`` lower-cases every field name on every call, and reading
    one part's type, file name, charset and encoding takes half a dozen calls:
    on the corpus, a fifth of a message's filtering time. The lower-cased
    names are kept beside the header list they came from and rebuilt when
    that list is replaced or grows, which covers every way ``Message`` changes
    its fields (``replace_header`` keeps the name it replaces).
    """

    _names_of: list[tuple[str, Any]] | None = None
    _names: tuple[str, ...] = ()

    def _lower_names(self) -> tuple[str, ...]:
        headers: list[tuple[str, Any]] = self._headers  # type: ignore[attr-defined]
        if self._names_of is not headers or len(self._names) != len(headers):
            self._names = tuple(name.lower() for name, _ in headers)
            self._names_of = headers
        return self._names

    def get(self, name: str, failobj: Any = None) -> Any:
        try:
            at = self._lower_names().index(name.lower())
        except ValueError:
            return failobj
        field, value = self._headers[at]  # type: ignore[attr-defined]
        return self.policy.header_fetch_parse(field, value)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lower_names()


_PARSER = BytesParser(IndexedMessage, policy=compat32)
# Transfer encodings a multipart may declare without a defect.
_PLAIN_ENCODINGS = ("7bit", "8bit", "binary")


def parse(raw: bytes) -> Message:
    """``_PARSER.parsebytes(raw)``, without the feed parser's line-by-line work where it is moot.

    The feed parser reads a single-part body one line at a time only to join
    the lines again, and reads a header block one line at a time to split it
    into fields. When the header block ends at the first ``\n\n`` (no ``\r``
    in it, so the parser would find the same end) and every line of it is a
    field or a continuation (so the parser would record no defect), the fields
    are split by one regex, exactly as ``compat32.header_source_parse`` would
    split them; a block that is not that clean goes through the parser alone.
    A multipart body with no ``\r`` is split at its boundary lines as the
    parser would split it (``_multipart``); message/* bodies and multiparts
    that are not that plain take the full path. Same tree, same defects:
    about a third of the time on single parts, half on multiparts.
    """
    end = raw.find(b"\n\n")
    if end < 0 or b"\r" in raw[:end]:
        return _PARSER.parsebytes(raw)
    body = raw[end + 2 :].decode("ascii", "surrogateescape")
    if not _CLEAN_HEADERS_RE.fullmatch(raw, 0, end + 1):
        message = _PARSER.parsebytes(raw[: end + 2], headersonly=True)
        # Read as stored: get_payload() would decode 8-bit bytes by the declared charset.
        if getattr(message, "_payload", None) or _nested(message):
            return _PARSER.parsebytes(raw)  # the body began inside the block, or it nests
        message.set_payload(body)
        return message
    message = IndexedMessage(policy=compat32)
    fields = raw[: end + 1].decode("ascii", "surrogateescape")
    for name, value in _FIELD_RE.findall(fields):
        message.set_raw(name, value)
    if message.get_content_maintype() == "multipart" and "\r" not in body:
        if _multipart(message, body):
            return message
        return _PARSER.parsebytes(raw)
    if _nested(message):
        return _PARSER.parsebytes(raw)
    message.set_payload(body)
    return message


def _nested(message: Message) -> bool:
    """Whether the message's body holds more messages: parts, or a message/* body."""
    return message.get_content_maintype() in ("multipart", "message")


@dataclass(frozen=True, slots=True)
class _Boundary:
    """A boundary line: where it starts, where the next line starts, and whether it closes."""

    start: int
    end: int
    close: bool


def _boundaries(body: str, separator: str) -> list[_Boundary]:
    """Every line of ``body`` that is ``separator``, ``--`` or not, then spaces or tabs.

    What the feed parser's pattern ``(--)?[ \t]*(\n)?$`` after the separator
    accepts on a line split at ``\n``.
    """
    found: list[_Boundary] = []
    at = 0 if body.startswith(separator) else _next_line(body, separator, 0)
    while at >= 0:
        i = at + len(separator)
        close = body.startswith("--", i)
        i += 2 if close else 0
        while i < len(body) and body[i] in " \t":
            i += 1
        if i == len(body) or body[i] == "\n":
            found.append(_Boundary(at, i + 1, close))
        at = _next_line(body, separator, at)
    return found


def _next_line(body: str, separator: str, start: int) -> int:
    """Where the next line starting with ``separator`` after ``start`` starts, or -1."""
    newline = body.find("\n" + separator, start)
    return newline + 1 if newline >= 0 else -1


def _multipart(message: Message, body: str) -> bool:
    """Attach the parts of ``body`` to ``message``, as the feed parser would; False if it would not.

    The parser's own multipart reading is followed where it is plain: one
    start boundary, parts that are neither multipart nor message/* (nor a
    digest's, whose default type is message/rfc822), no two boundary lines in
    a row, a close boundary. Each part is parsed on its own by ``parse``, as
    the parser parses it between its boundaries; the newline before each
    boundary line belongs to the boundary (RFC 2046), so it leaves the
    preamble and each part's payload. Anything else (and any defect it would record here) is
    left to the parser: False, and ``message`` has no parts.
    """
    boundary = message.get_boundary()
    encoding = str(message.get("content-transfer-encoding", "8bit")).lower()
    if boundary is None or encoding not in _PLAIN_ENCODINGS:
        return False
    if message.get_content_type() == "multipart/digest":
        return False
    marks = _boundaries(body, "--" + boundary)
    closing = next((k for k, mark in enumerate(marks) if mark.close), 0)
    if closing == 0 or any(a.end == b.start for a, b in pairwise(marks[: closing + 1])):
        return False
    parts = []
    for this, after in pairwise(marks[: closing + 1]):
        part = parse(body[this.end : after.start].encode("ascii", "surrogateescape"))
        if _nested(part):
            return False
        payload = getattr(part, "_payload", None)  # as stored, as the parser trims it
        if isinstance(payload, str) and payload.endswith("\n"):
            part.set_payload(payload[:-1])
        parts.append(part)
    for part in parts:
        message.attach(part)
    preamble = body[: marks[0].start]
    if preamble:
        message.preamble = preamble[:-1]
    message.epilogue = body[marks[closing].end :]
    return True
