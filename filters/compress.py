"""Content control's "compress email attachments": chosen attachments become one zip.

The Telstra content-control terms list "compress email attachments" among a
rule's actions [Content control 8]. The message is otherwise delivered as it
came: the chosen attachment parts are taken out of their multiparts and one
``application/zip`` part (deflated, base64) takes the place of the first of
them; a message that is itself one attachment gets the zip as its body.
``X-Mailmoat-Compressed`` says what was packed. Unlike the other delivery
changes, this one must re-serialise the message through the ``email``
package; it is pure (bytes in, bytes out), so it runs in the filter worker
with the rest of the pipeline.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Collection
from email.message import Message
from email.mime.application import MIMEApplication
from email.policy import compat32

from filters.mail import Mail

ZIP_NAME = "attachments.zip"
HEADER = "X-Mailmoat-Compressed"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NAMES_SHOWN = 10  # the header names this many members; the zip holds them all


def _member_name(filename: str | None, index: int, used: set[str]) -> str:
    """A plain, unique zip member name: no directories, no control or non-ASCII characters."""
    base = _UNSAFE.sub("_", (filename or "").replace("\\", "/").rsplit("/", 1)[-1]).strip("._")
    name = base or f"attachment-{index}.bin"
    stem, dot, ext = name.rpartition(".")
    count = 1
    while name in used:
        count += 1
        name = f"{stem}-{count}.{ext}" if dot and stem else f"{name}-{count}"
    used.add(name)
    return name


def _zip_part(mail: Mail, chosen: list[int]) -> tuple[MIMEApplication, list[str]]:
    buffer, used, names = io.BytesIO(), set[str](), []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index in chosen:
            attachment = mail.attachments[index]
            names.append(_member_name(attachment.filename, index + 1, used))
            archive.writestr(names[-1], attachment.data)
    part = MIMEApplication(buffer.getvalue(), "zip")
    part.add_header("Content-Disposition", "attachment", filename=ZIP_NAME)
    return part, names


def _replace_body(root: Message, part: Message) -> None:
    """Make a single-part message carry ``part``'s content and headers instead of its own."""
    for name in ("Content-Type", "Content-Transfer-Encoding", "Content-Disposition"):
        del root[name]
        root[name] = str(part[name])
    root.set_payload(part.get_payload())


def compress_attachments(raw: bytes, positions: Collection[int]) -> bytes | None:
    """The message with the attachments at ``positions`` (of ``Mail.attachments``) zipped.

    None when there is nothing to do: no such attachment, or bytes the parser
    cannot make a tree of (the message is then delivered unchanged).
    """
    mail = Mail(raw)  # a parse of our own: its tree is changed below
    root, parts = mail.message, mail.attachment_parts
    chosen = sorted(i for i in set(positions) if 0 <= i < len(parts))
    if root is None or not chosen:
        return None
    zipped, names = _zip_part(mail, chosen)
    targets = {id(parts[i]) for i in chosen}
    if id(root) in targets:
        _replace_body(root, zipped)
    else:
        placed = False
        for container in [p for p in root.walk() if p.is_multipart()]:
            payload = container.get_payload()
            assert isinstance(payload, list)
            kept: list[Message | str] = []
            for child in payload:
                if id(child) not in targets:
                    kept.append(child)
                elif not placed:
                    kept.append(zipped)
                    placed = True
            container.set_payload(kept)
    shown = ", ".join(names[:_NAMES_SHOWN]) + (", ..." if len(names) > _NAMES_SHOWN else "")
    root[HEADER] = f"{len(names)} attachment(s) into {ZIP_NAME}: {shown}"
    return root.as_bytes(policy=compat32.clone(linesep="\r\n"))
