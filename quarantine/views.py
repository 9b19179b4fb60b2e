"""How one held message is shown to its owner: headers, text, attachments, and why it was held."""

from __future__ import annotations

from typing import Any

from filters.mail import Mail
from quarantine.held import HeldMessage

MAX_TEXT = 100_000


def detail_of(message: HeldMessage) -> dict[str, Any]:
    """The parts of a held message a customer reads before releasing it (never raises)."""
    mail = Mail(message.raw)
    return {
        "headers": [{"name": k, "value": v} for k, v in mail.headers],
        "text_parts": [
            {"content_type": p.content_type, "text": p.text[:MAX_TEXT]} for p in mail.text_parts
        ],
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
            }
            for a in mail.attachments
        ],
        "hits": list(message.hits),
    }
