"""Byte-level changes made on delivery: trace headers in front, a tag on the subject.

The spooled bytes are never re-serialised through the ``email`` package (that
would re-wrap headers and can change signed content); we prepend header lines
and edit the one Subject line in place.
"""

from __future__ import annotations

import re
from email.utils import formatdate

from filters.verdict import Verdict
from store.records import header_lines

_SUBJECT = re.compile(rb"^Subject:[ \t]?", re.IGNORECASE | re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def received_header(
    *, helo: str | None, client_ip: str | None, hostname: str, queue_id: str, when: float
) -> bytes:
    """The RFC 5321 trace line this gateway adds to every message it accepts."""
    source = f"from {helo or 'unknown'} ([{client_ip or 'unknown'}])"
    stamp = formatdate(when, usegmt=True)
    return header_lines(
        [("Received", f"{source} by {hostname} (Mailmoat) with ESMTP id {queue_id}; {stamp}")]
    )


COPY_HEADER = "X-Mailmoat-Copy"
"""Marks a content-rule copy to an admin, apart from the message's own delivery."""


def verdict_headers(verdict: Verdict, queue_id: str) -> bytes:
    """``X-Mailmoat-*`` lines: what was decided and why, for the customer's server and users."""
    pairs = [
        ("X-Mailmoat-Queue-Id", queue_id),
        ("X-Mailmoat-Action", verdict.action.label),
        ("X-Mailmoat-Category", str(verdict.category)),
        ("X-Mailmoat-Score", f"{verdict.score:.2f}"),
    ]
    if verdict.hits:
        pairs.append(("X-Mailmoat-Symbols", ", ".join(dict.fromkeys(verdict.symbols))))
    if verdict.category == "spam":
        pairs.append(("X-Mailmoat-Spam", "yes"))
    pairs.extend(verdict.headers)  # Authentication-Results when [auth] is enabled
    return header_lines(pairs)


def tag_subject(raw: bytes, tag: str) -> bytes:
    """Prefix the Subject with ``tag`` (adding a Subject when there is none), once."""
    end = _HEADER_END.search(raw)
    head_end = end.start() if end else len(raw)
    encoded = tag.encode("utf-8")
    match = _SUBJECT.search(raw, 0, head_end)
    if match is None:
        return b"Subject: " + encoded + b"\r\n" + raw
    if raw[match.end() : match.end() + len(encoded)] == encoded:
        return raw
    return raw[: match.end()] + encoded + b" " + raw[match.end() :]


def render(raw: bytes, prefix: bytes, subject_tag: str | None) -> bytes:
    """The bytes a delivery sends: prefix headers, then the (maybe tagged) message."""
    body = tag_subject(raw, subject_tag) if subject_tag else raw
    return prefix + body
