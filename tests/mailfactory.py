"""Build test messages from a few keywords, so each test states only what matters to it."""

from __future__ import annotations

from email.message import EmailMessage

from filters.mail import Envelope, Mail


def make_mail(
    body: str = "Hello, this is an ordinary message about the quarterly planning meeting.",
    *,
    sender: str = "alice@partner.example",
    to: tuple[str, ...] = ("bob@example.test",),
    subject: str = "Planning meeting",
    headers: dict[str, str] | None = None,
    html: str | None = None,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
    client_ip: str | None = "192.0.2.10",
) -> Mail:
    """A well-formed message and its envelope; attachments are (filename, mime type, bytes)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = "Tue, 24 Nov 2026 09:00:00 +0000"
    msg["Message-ID"] = "<test-1@partner.example>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, ctype, data in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    envelope = Envelope(
        client_ip=client_ip, helo="mail.partner.example", mail_from=sender, rcpt_tos=to
    )
    return Mail(msg.as_bytes(), envelope)
