"""A labelled sample corpus made from templates, so the demo needs nothing from outside.

Ham is business mail (meetings, invoices with PDF attachments, project
updates, a legitimate newsletter); spam is pharmacy, lottery, phishing,
loan and crypto pitches with the usual tells (shouting subjects, raw-IP
links, HTML with images). A few messages carry the EICAR test virus, in a
zip or bare. The same seed always gives the same corpus: ``labels.tsv`` in
the corpus format ``mailmoat train``, ``evaluate`` and ``replay`` read.
"""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
PEOPLE = ["alice", "bruno", "chen", "dana", "emeka", "fatima", "greta", "hiro", "ines", "jonas"]
PARTNERS = ["partner.example", "supplier.example", "lawfirm.example", "univ.example"]
TOPICS = ["release review", "budget forecast", "hiring plan", "customer escalation",
          "security audit", "office move", "quarterly report", "vendor contract"]  # fmt: skip
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
SPAM_DOMAINS = ["cheap-meds.example", "lucky-draw.example", "secure-bank-login.example",
                "fastloans.example", "coin-moon.example"]  # fmt: skip


def _ham_meeting(r: random.Random) -> tuple[str, str]:
    topic, day = r.choice(TOPICS), r.choice(DAYS)
    body = (f"Hi,\n\nCan we move the {topic} to {day} at {r.randint(9, 16)}:00? "
            f"I have put the notes from last time in the shared folder, and {r.choice(PEOPLE)} "
            f"will join to walk us through the open points.\n\nItems so far:\n"
            f"1. status of the {r.choice(TOPICS)}\n2. next steps and owners\n"
            f"3. anything else\n\nThanks,\n{r.choice(PEOPLE).title()}\n")  # fmt: skip
    return f"{topic.title()} on {day}", body


def _ham_update(r: random.Random) -> tuple[str, str]:
    done, late = r.randint(3, 12), r.randint(0, 3)
    body = (f"Team,\n\nShort update on the {r.choice(TOPICS)}: {done} tasks are done this week "
            f"and {late} slipped to next week. The test environment was rebuilt on "
            f"{r.choice(DAYS)}; please rerun your checks against it.\n\nRisks: the vendor has "
            "not confirmed the delivery date yet. I will chase them.\n\nRegards\n")  # fmt: skip
    return f"Weekly update: {r.choice(TOPICS)}", body


def _ham_newsletter(r: random.Random) -> tuple[str, str]:
    body = (f"Partner newsletter, issue {r.randint(10, 99)}\n\nThis month: new integration "
            "guides, the maintenance calendar for next quarter, and a case study from a "
            "logistics customer. You receive this because your company is a registered "
            "partner. Manage your subscription in the partner portal.\n")  # fmt: skip
    return f"Partner newsletter #{r.randint(10, 99)}", body


def _spam(r: random.Random) -> tuple[str, str, str]:
    domain = r.choice(SPAM_DOMAINS)
    ip = f"198.51.100.{r.randint(2, 250)}"
    pitches = {
        "cheap-meds.example": ("VIAGRA CIALIS 80% OFF!!! LOWEST PRICES",
                               "No prescription needed. Order now, discreet shipping"),
        "lucky-draw.example": ("CONGRATULATIONS YOU HAVE WON $1,000,000",
                               "Your address won our international lottery. Claim now"),
        "secure-bank-login.example": ("Urgent: your account has been suspended",
                                      "Verify your identity within 24 hours or lose access"),
        "fastloans.example": ("Get $5000 TODAY - no credit check!!!",
                              "Bad credit? No problem. Cash in your account in minutes"),
        "coin-moon.example": ("This coin will 100x - last chance $$$",
                              "Insiders are buying before the listing. Double your money"),
    }  # fmt: skip
    subject, pitch = pitches[domain]
    images = "".join(f'<img src="http://{domain}/{i}.gif">' for i in range(r.randint(2, 5)))
    html = (f"<html><body><p><b>{pitch}!</b></p>{images}<p><a href=\"http://{ip}/"
            f"{r.randint(1000, 9999)}\">CLICK HERE</a></p><p>Unsubscribe: "
            f"<a href=\"http://{domain}/u\">here</a></p></body></html>")  # fmt: skip
    return subject, html, domain


def _message(sender: str, to: str, subject: str, when: datetime, r: random.Random) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<{r.getrandbits(64):x}@{sender.rpartition('@')[2]}>"
    return msg


def generate(out: Path, count: int = 200, *, seed: int = 7, spam_share: float = 0.35,
             viruses: int = 4, domain: str = "example.test") -> Path:  # fmt: skip
    """Write ``count`` messages and ``labels.tsv`` under ``out``; returns the labels file."""
    r = random.Random(seed)
    start = datetime(2026, 11, 2, 8, tzinfo=UTC)
    (out / "ham").mkdir(parents=True, exist_ok=True)
    (out / "spam").mkdir(parents=True, exist_ok=True)
    virus_at = set(r.sample(range(count), min(viruses, count)))
    hams: list[Callable[[random.Random], tuple[str, str]]] = [
        _ham_meeting,
        _ham_update,
        _ham_newsletter,
    ]
    lines = []
    for n in range(count):
        when = start + timedelta(minutes=7 * n + r.randint(0, 6))
        to = f"{r.choice(PEOPLE)}@{domain}"
        if n in virus_at or r.random() >= spam_share:
            subject, body = r.choice(hams)(r)
            sender = f"{r.choice(PEOPLE)}@{r.choice(PARTNERS)}"
            msg = _message(sender, to, subject, when, r)
            msg.set_content(body)
            if n in virus_at:
                _attach_virus(msg, r)
            elif r.random() < 0.2:
                pdf = b"%PDF-1.4\n" + r.randbytes(2048)
                name = f"invoice-{r.randint(1000, 9999)}.pdf"
                msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=name)
            # Infected business mail is unwanted mail: stopping it is right, not a false positive.
            label = "spam" if n in virus_at else "ham"
        else:
            subject, html, spam_domain = _spam(r)
            msg = _message(f"offers@{spam_domain}", to, subject, when, r)
            msg.set_content(html, subtype="html")
            label = "spam"
        if msg.is_multipart():  # the stdlib draws boundaries from the global random module
            msg.set_boundary(f"mm-{r.getrandbits(64):016x}")
        path = Path(label) / f"{n:05d}.eml"
        (out / path).write_bytes(msg.as_bytes())
        lines.append(f"{label}\t{path}")
    labels = out / "labels.tsv"
    labels.write_text("\n".join(lines) + "\n")
    return labels


def _attach_virus(msg: EmailMessage, r: random.Random) -> None:
    if r.random() < 0.5:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            # A fixed member time: writestr(name) stamps the wall clock, and the same seed
            # must give the same bytes.
            archive.writestr(zipfile.ZipInfo("scan.com", date_time=(2026, 11, 2, 8, 0, 0)), EICAR)
        msg.add_attachment(buffer.getvalue(), maintype="application", subtype="zip",
                           filename="scan.zip")  # fmt: skip
    else:
        msg.add_attachment(EICAR, maintype="application", subtype="octet-stream",
                           filename="update.com")  # fmt: skip
