"""Spam signatures: catch resends of known spam campaigns by exact and fuzzy body hashes.

Normalised body, so that one campaign's copies hash alike: the visible text
(``Mail.text``) lower-cased and UTF-8 encoded; ASCII whitespace runs become
one space; every digit run becomes ``0``; then a space-separated token holding
an ``@`` (an address) becomes ``@``, and a token of 12 or more bytes holding a
digit (tracking ids, hex, base64, personalised URLs) becomes ``~``. A body
under ``MIN_BODY_BYTES`` bytes after that never matches and gets no
signature: too many unrelated short messages would share one. The steps run
as one compiled pass (``filters/bodynorm.pyx``): five ``re.sub`` passes cost
150 us on an average corpus message, bytes operations 35 us, the pass a few.

Signature file: UTF-8 text, one signature a line, blank and ``#`` lines ignored::

    exact <sha256 of the normalised body, 64 hex> <name>
    fuzzy <TLSH of the normalised body, "T1" prefix optional> <name>

The name is the rest of the line. A bad line fails the load with ``file:line:``.

TLSH is stable under small edits from about 1 KB of text (two changed words
in a 400-byte body can cost 100); shorter campaigns rely on the exact hash.
Its distance adds 12 per step of the hashes' length byte beyond one, so
fuzzy signatures are bucketed by that byte and only buckets that can lie
within ``max_distance`` are compared.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import tlsh

from filters.bodynorm import normalise_bytes
from filters.mail import Mail
from filters.symbols import default_score
from filters.verdict import Action, Hit, Stage

SIGNATURE_EXACT = "SIGNATURE_EXACT"
SIGNATURE_FUZZY = "SIGNATURE_FUZZY"
MIN_BODY_BYTES = 20

_SHA256 = re.compile(r"[0-9a-f]{64}")
_TLSH = re.compile(r"(?:T1)?[0-9A-F]{70}")


class SignatureFileError(ValueError):
    """The spam signature file is missing or malformed; the message names file and line."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """Hashes of a normalised body of ``length`` bytes; ``tlsh`` is None when TLSH cannot."""

    sha256: str
    tlsh: str | None
    length: int


def normalise(text: str) -> bytes:
    """The body as hashed: per-recipient noise replaced (see the module docstring)."""
    return normalise_bytes(text.lower().encode("utf-8", "replace"))


def _body(mail: Mail) -> bytes:
    """``normalise(mail.text)``, from the lower-cased text the other stages share."""
    return normalise_bytes(mail.text_lower.encode("utf-8", "replace"))


def _tlsh(body: bytes) -> str | None:
    """TLSH of the body ("T1" form); None when it is too short or too uniform (``TNULL``)."""
    digest: str = tlsh.hash(body)
    return "T1" + digest.removeprefix("T1") if digest and digest != "TNULL" else None


def _length_byte(digest: str) -> int:
    """TLSH's log-length byte: nibble-swapped, after "T1" and the checksum byte."""
    return int(digest[5] + digest[4], 16)


def fingerprint(mail: Mail) -> Fingerprint:
    """Exact and fuzzy hashes of the message's normalised visible text."""
    body = _body(mail)
    return Fingerprint(hashlib.sha256(body).hexdigest(), _tlsh(body), len(body))


@dataclass(frozen=True, eq=False)
class SignatureDatabase:
    """An immutable set of known-spam signatures: sha256 -> name and (TLSH, name) pairs."""

    exact: Mapping[str, str] = field(default_factory=dict)
    fuzzy: tuple[tuple[str, str], ...] = ()
    _by_length: Mapping[int, tuple[tuple[str, str], ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        buckets: defaultdict[int, list[tuple[str, str]]] = defaultdict(list)
        for digest, name in self.fuzzy:
            buckets[_length_byte(digest)].append((digest, name))
        object.__setattr__(self, "exact", MappingProxyType(dict(self.exact)))
        object.__setattr__(self, "_by_length", {k: tuple(v) for k, v in buckets.items()})

    @classmethod
    def empty(cls) -> SignatureDatabase:
        return cls()

    @classmethod
    def load(cls, path: Path) -> SignatureDatabase:
        """Read a signature file; a missing file or bad line raises SignatureFileError."""
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SignatureFileError(f"{path}: cannot read: {exc}") from None
        exact: dict[str, str] = {}
        fuzzy: list[tuple[str, str]] = []
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            kind, digest, name = [*line.split(maxsplit=2), "", ""][:3]
            if kind == "exact" and _SHA256.fullmatch(digest.lower()) and name:
                exact[digest.lower()] = name.strip()
            elif kind == "fuzzy" and _TLSH.fullmatch(digest.upper()) and name:
                fuzzy.append(("T1" + digest.upper().removeprefix("T1"), name.strip()))
            else:
                expected = "'exact <sha256> <name>' or 'fuzzy <tlsh> <name>'"
                raise SignatureFileError(f"{path}:{number}: expected {expected}")
        return cls(exact, tuple(fuzzy))

    def __len__(self) -> int:
        return len(self.exact) + len(self.fuzzy)

    def closest(self, digest: str, max_distance: int) -> tuple[int, str] | None:
        """(distance, name) of the nearest fuzzy signature within ``max_distance``."""
        # Length bytes d > 1 apart add 12 * d, so farther buckets cannot be within reach.
        reach = min(128, max(1, max_distance // 12))
        length = _length_byte(digest)
        best: tuple[int, str] | None = None
        for step in range(-reach, reach + 1):
            for candidate, name in self._by_length.get((length + step) % 256, ()):
                distance: int = tlsh.diff(digest, candidate)
                if distance <= max_distance and (best is None or distance < best[0]):
                    best = distance, name
        return best


def check(
    mail: Mail,
    db: SignatureDatabase,
    action: Action,
    max_distance: int,
    scores: Mapping[str, float] = MappingProxyType({}),
) -> tuple[Hit, ...]:
    """A SIGNATURE_EXACT or else SIGNATURE_FUZZY hit asking for ``action``; () on no match.

    ``scores`` overrides the registry's scores by symbol.
    """
    if not len(db):
        return ()
    body = _body(mail)
    if len(body) < MIN_BODY_BYTES:
        return ()
    name = db.exact.get(hashlib.sha256(body).hexdigest())
    if name is not None:
        reason = f"body is known spam {name!r}"
        score = scores.get(SIGNATURE_EXACT, default_score(SIGNATURE_EXACT))
        return (Hit(SIGNATURE_EXACT, Stage.SIGNATURES, reason, score, action),)
    digest = _tlsh(body) if db.fuzzy else None
    best = db.closest(digest, max_distance) if digest else None
    if best is None:
        return ()
    reason = f"body is near known spam {best[1]!r} (TLSH distance {best[0]})"
    score = scores.get(SIGNATURE_FUZZY, default_score(SIGNATURE_FUZZY))
    return (Hit(SIGNATURE_FUZZY, Stage.SIGNATURES, reason, score, action),)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a changed file apart: mtime, size, inode (None when it is missing)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


class SignatureFile:
    """The service's live signature file: an immutable snapshot, swapped when the file changes.

    Readers take ``.database`` without locking: a swap is one reference
    assignment. ``reload_if_changed`` blocks on disk, so call it from a timer
    thread; a lock keeps concurrent calls apart. When the changed file is
    missing or broken it raises SignatureFileError for the caller to log and
    keeps serving the old snapshot; that version is not retried until the file
    changes again, so the error is reported once per change, not per poll.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp = _stamp(path)
        self._database = SignatureDatabase.load(path)

    @property
    def database(self) -> SignatureDatabase:
        return self._database

    def reload_if_changed(self) -> bool:
        """True when a new snapshot was swapped in; raises (keeping the old) when broken."""
        with self._lock:
            stamp = _stamp(self.path)
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            self._database = SignatureDatabase.load(self.path)
            return True


def signature_lines(mails: Iterable[tuple[str, Mail]]) -> Iterator[str]:
    """Signature-file lines for (name, spam message) pairs; a comment for unusable bodies."""
    seen: set[str] = set()
    for name, mail in mails:
        name = name.strip()
        if not name or "\n" in name or "\r" in name:
            raise ValueError(f"signature name {name!r} must be one non-empty line")
        fp = fingerprint(mail)
        if fp.length < MIN_BODY_BYTES:
            yield f"# {name}: body too short for a signature"
            continue
        for kind, digest in (("exact", fp.sha256), ("fuzzy", fp.tlsh)):
            if digest is not None and digest not in seen:
                seen.add(digest)
                yield f"{kind} {digest} {name}"
