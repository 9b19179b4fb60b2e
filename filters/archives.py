"""Archive unpacking under bomb limits, shared by anti-virus and content rules.

Formats are the ones the standard library reads without running anything:
zip (any method ``zipfile`` knows), tar (plain, or compressed as
``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz``) and single compressed files
(gzip, bzip2, xz). They are recognised by their magic bytes, not their names,
so a renamed archive is unpacked too. A compressed tar is one level of
nesting, like a zip: its members are yielded, not the tar in between.

Every message has one allowance (``ArchiveLimits``): nesting depth, members
unpacked and bytes actually decompressed, read ``_CHUNK`` at a time so a bomb
inflates at most one chunk past the allowance; declared sizes only refuse
early. Tar members are slices of bytes already held (in the message or
already charged when decompressed), so they count as members, not bytes.
Past a limit or the deadline, the walk yields an ``Unpacked`` with no data
where it stopped: what was not unpacked is never passed as looked at. A
corrupt or encrypted archive or member yields nothing more.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from filters.budget import NEVER, Deadline

# Bytes asked of a decompressor at a time: bounds inflation past a member's declared size.
_CHUNK = 64 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
_STREAMS: dict[bytes, Callable[[io.BytesIO], io.BufferedIOBase]] = {
    b"\x1f\x8b": lambda raw: gzip.GzipFile(fileobj=raw),
    b"BZh": bz2.BZ2File,
    b"\xfd7zXZ\x00": lzma.LZMAFile,
}
# The suffixes a compressed single file's name loses when it is unpacked.
_STREAM_SUFFIX = re.compile(r"\.(?:gz|bz2|xz)$", re.IGNORECASE)
# zipfile, tarfile and the decompressors raise these on hostile or truncated archives.
ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    tarfile.TarError,
    NotImplementedError,
    RuntimeError,
    OSError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Bounds on archive unpacking for one message, against zip, tar and gzip bombs."""

    max_depth: int = 3
    max_members: int = 1000
    max_bytes: int = 64 * 1024 * 1024


DEFAULT_LIMITS = ArchiveLimits()


@dataclass(frozen=True, slots=True)
class Unpacked:
    """One object of the walk: the attachment itself, or a member at ``where``.

    ``data`` is None where a limit or the deadline stopped the walk: ``where``
    names the archive that was not (fully) unpacked.
    """

    where: str
    name: str | None
    data: bytes | None

    @property
    def exceeded(self) -> bool:
        return self.data is None


def label(text: str | None, fallback: str) -> str:
    """A file name safe for logs and headers: no control characters, bounded length."""
    return _CONTROL.sub("?", text)[:200] if text else fallback


def _is_tar(data: bytes) -> bool:
    return data[257:262] == b"ustar"


def is_archive(data: bytes) -> bool:
    """True when ``walk`` would unpack ``data``."""
    return data.startswith(_ZIP_MAGIC) or _is_tar(data) or any(map(data.startswith, _STREAMS))


@dataclass
class Unpacker:
    """Walks archives for one message, spending its allowance across every attachment."""

    limits: ArchiveLimits = DEFAULT_LIMITS
    deadline: Deadline = NEVER

    def __post_init__(self) -> None:
        self.members = self.limits.max_members
        self.size = self.limits.max_bytes

    def walk(self, data: bytes, where: str, name: str | None, depth: int = 0) -> Iterator[Unpacked]:
        """``data`` first, then everything unpacked from it, depth first."""
        yield Unpacked(where, name, data)
        if not is_archive(data):
            return
        if depth + 1 > self.limits.max_depth:
            yield Unpacked(where, name, None)
            return
        try:
            for member in self._members(data, where, name):
                if member.exceeded:
                    yield member
                    return
                assert member.data is not None
                yield from self.walk(member.data, member.where, member.name, depth + 1)
        except ARCHIVE_ERRORS:
            return

    def _members(self, data: bytes, where: str, name: str | None) -> Iterator[Unpacked]:
        if data.startswith(_ZIP_MAGIC):
            yield from self._zip(data, where)
        elif _is_tar(data):
            yield from self._tar(data, where)
        else:
            yield from self._stream(data, where, name)

    def _stop(self, where: str) -> Unpacked:
        return Unpacked(where, None, None)

    def _zip(self, data: bytes, where: str) -> Iterator[Unpacked]:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            self.members -= len(members)
            # Declared sizes are a cheap first refusal only: they do not bound what is inflated.
            if self.members < 0 or sum(m.file_size for m in members) > self.size:
                yield self._stop(where)
                return
            for index, member in enumerate(members, 1):
                if member.flag_bits & 0x1:  # encrypted: unreadable without the password
                    continue
                if self.deadline.passed():
                    yield self._stop(where)
                    return
                try:
                    with archive.open(member) as stream:
                        content = self._inflate(stream)
                except ARCHIVE_ERRORS:
                    continue
                if content is None:
                    yield self._stop(where)
                    return
                path = f"{where}/{label(member.filename, f'#{index}')}"
                yield Unpacked(path, member.filename, content)

    def _tar(self, data: bytes, where: str) -> Iterator[Unpacked]:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            members = [m for m in archive.getmembers() if m.isreg()]
            self.members -= len(members)
            if self.members < 0:
                yield self._stop(where)
                return
            for index, member in enumerate(members, 1):
                if self.deadline.passed():
                    yield self._stop(where)
                    return
                stream = archive.extractfile(member)
                if stream is None:
                    continue
                with stream:
                    content = stream.read()
                yield Unpacked(f"{where}/{label(member.name, f'#{index}')}", member.name, content)

    def _stream(self, data: bytes, where: str, name: str | None) -> Iterator[Unpacked]:
        """A compressed single file: its content, or the members of the tar it holds."""
        opener = next(o for magic, o in _STREAMS.items() if data.startswith(magic))
        self.members -= 1
        if self.members < 0:
            yield self._stop(where)
            return
        with opener(io.BytesIO(data)) as stream:
            content = self._inflate(stream)
        if content is None:
            yield self._stop(where)
        elif _is_tar(content):
            self.members += 1  # the tar in between is not a member of its own
            yield from self._tar(content, where)
        else:
            inner = _STREAM_SUFFIX.sub("", name) if name and _STREAM_SUFFIX.search(name) else None
            yield Unpacked(f"{where}/{label(inner, '#1')}", inner, content)

    def _inflate(self, stream: IO[bytes] | io.BufferedIOBase) -> bytes | None:
        """A stream's bytes, read in chunks and charged to the allowance; None past it.

        ``ZipFile.read`` asks the decompressor for up to 1 GiB in one call and
        only then cuts the result to the declared size, so a member declaring
        one byte over a gigabyte of zeros inflates the gigabyte, and entries of
        an overlapping central directory inflate the same data again and again.
        Reading ``_CHUNK`` at a time inflates at most one chunk past the
        allowance, and every byte read counts against ``max_bytes``.
        """
        chunks: list[bytes] = []
        while chunk := stream.read(_CHUNK):
            self.size -= len(chunk)
            if self.size < 0:
                return None
            chunks.append(chunk)
        return b"".join(chunks)
