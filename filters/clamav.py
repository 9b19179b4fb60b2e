"""ClamAV signature files: ``.hdb`` hashes and ``.ndb`` hex body signatures, parsed strictly.

A missing or malformed file is an error naming the file and line, never an
empty database: an anti-virus silently running without its signatures is
worse than one that refuses to start.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

_HDB_LINE = re.compile(r"([0-9a-fA-F]{32}):(\d+|\*):([^:]+)(?::\d*){0,2}")
_NDB_LINE = re.compile(r"([^:]+):\d+:([^:]+):([^:]+)(?::\d*){0,2}")
_HEX_TOKEN = re.compile(
    r"(?P<hex>[0-9a-f]{2})|(?P<any>\?\?)|(?P<hi>[0-9a-f]\?)|(?P<lo>\?[0-9a-f])|(?P<star>\*)"
    r"|(?P<range>\{(\d*)(-?)(\d*)\})|(?P<alt>\(((?:[0-9a-f]{2})+(?:\|(?:[0-9a-f]{2})+)+)\))"
)

_HEX_RULES: dict[str, Callable[[re.Match[str]], bytes]] = {
    "hex": lambda t: re.escape(bytes.fromhex(t["hex"])),
    "any": lambda t: b".",
    "hi": lambda t: b"[\\x%s0-\\x%sf]" % ((t["hi"][0].encode(),) * 2),
    "lo": lambda t: b"[%s]" % b"".join(b"\\x%x%s" % (i, t["lo"][1].encode()) for i in range(16)),
    "star": lambda t: b".*?",
    "range": lambda t: _range(t[7], t[8], t[9]),
    "alt": lambda t: b"(?:%s)" % b"|".join(re.escape(bytes.fromhex(c)) for c in t[11].split("|")),
}


class VirusSignatureError(ValueError):
    """A virus signature file is missing or malformed; the message names file and line."""


@dataclass(frozen=True, slots=True)
class HexSignature:
    """One body signature: ``regex`` is a bytes pattern, ``offset`` (min, max) or None for any."""

    name: str
    regex: bytes
    offset: tuple[int, int] | None = None

    @property
    def anchored_regex(self) -> bytes:
        """The pattern to ``match`` at position 0 (or ``search`` when floating)."""
        if self.offset is None:
            return self.regex
        low, high = self.offset
        return b".{%d,%d}(?:%s)" % (low, high, self.regex)


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    """(line number, text) of each non-blank line that is not a ``#`` comment."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VirusSignatureError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = data[: exc.start].count(b"\n") + 1
        raise VirusSignatureError(f"{path}:{bad_line}: not UTF-8 text") from None
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, line.strip()


def parse_hdb(path: Path) -> dict[tuple[str, int | None], str]:
    hashes: dict[tuple[str, int | None], str] = {}
    for number, line in _lines(path):
        match = _HDB_LINE.fullmatch(line)
        if match is None:
            raise VirusSignatureError(f"{path}:{number}: expected md5:size:name")
        md5, size, name = match.groups()
        hashes[md5.lower(), None if size == "*" else int(size)] = name
    return hashes


def parse_ndb(path: Path) -> list[HexSignature]:
    signatures = []
    for number, line in _lines(path):
        match = _NDB_LINE.fullmatch(line)
        if match is None:
            raise VirusSignatureError(f"{path}:{number}: expected name:target:offset:hexsig")
        name, offset, hexsig = match.groups()
        try:
            signatures.append(HexSignature(name, hex_regex(hexsig), _offset(offset)))
        except ValueError as exc:
            raise VirusSignatureError(f"{path}:{number}: {exc}") from None
    return signatures


def _offset(text: str) -> tuple[int, int] | None:
    if text == "*":
        return None
    match = re.fullmatch(r"(\d+)(?:,(\d+))?", text)
    if match is None:
        raise ValueError(f"unsupported offset {text!r} (only *, n and n,m)")
    start = int(match[1])
    return start, start + int(match[2] or 0)


def hex_regex(hexsig: str) -> bytes:
    """A ClamAV hex signature as a bytes regex (for DOTALL); ValueError says what is wrong."""
    tokens, pos = [], 0
    while pos < len(hexsig):
        token = _HEX_TOKEN.match(hexsig.lower(), pos)
        if token is None:
            raise ValueError(f"bad hex signature at {hexsig[pos : pos + 12]!r}")
        tokens.append(token)
        pos = token.end()
    # ClamAV's rule too: without a fixed pair, a signature matches almost anything.
    if not any(a["hex"] and b["hex"] for a, b in pairwise(tokens)):
        raise ValueError("a hex signature needs at least two fixed bytes in a row")
    return b"".join(_HEX_RULES[str(t.lastgroup)](t) for t in tokens)


def _range(low: str, dash: str, high: str) -> bytes:
    if not dash:
        if not low:
            raise ValueError("empty {} in hex signature")
        return b".{%d}" % int(low)
    if not (low or high) or (low and high and int(low) > int(high)):
        raise ValueError(f"bad range {{{low}-{high}}} in hex signature")
    return b".{%d,%s}" % (int(low or 0), high.encode())
