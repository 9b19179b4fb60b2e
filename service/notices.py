"""Mail the gateway writes itself to a customer (queue alerts), as RFC 5322 bytes."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid


def alert_mail(*, sender: str, to: str, subject: str, body: str, now: float) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"], msg["To"] = sender, to
    msg["Subject"] = " ".join(subject.split())[:200]  # no header injection from detail text
    msg["Date"] = formatdate(now, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    return msg.as_bytes()
