"""The sign-in mail: a magic link to the recipient's own quarantine, as RFC 5322 bytes (pure)."""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid


def render_signin(*, recipient: str, sender: str, link: str, minutes: int, now: float) -> bytes:
    """Only the gateway's own text and the signed link: nothing an attacker wrote."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = Address(addr_spec=sender)
    msg["To"] = Address(addr_spec=recipient)
    msg["Subject"] = "Sign in to your mail quarantine"
    msg["Date"] = formatdate(now, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    msg.set_content(
        "Someone (we hope you) asked to sign in to the mail quarantine of\n"
        f"{recipient}. Open this link to sign in; it works once, for {minutes} minutes:\n\n"
        f"{link}\n\n"
        "If you did not ask, ignore this mail: nothing happens without the link.\n"
    )
    return msg.as_bytes(policy=SMTP)
