"""Header and body heuristic rules: cheap, named checks whose scores add up with the model's."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_tz
from functools import lru_cache

from filters.mail import Mail

_IP_HOST = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_EXECUTABLE = frozenset(
    [
        "exe",
        "scr",
        "pif",
        "bat",
        "com",
        "cmd",
        "js",
        "vbs",
        "vbe",
        "jse",
        "wsf",
        "lnk",
        "hta",
        "cpl",
        "msi",
    ]
)
# Extensions people open without a second thought: a lure in front of an executable one.
_DECOY = frozenset(
    [
        "doc",
        "docx",
        "xls",
        "xlsx",
        "pdf",
        "txt",
        "jpg",
        "jpeg",
        "gif",
        "png",
        "zip",
        "htm",
        "html",
        "rtf",
        "mp3",
        "avi",
        "mpg",
    ]
)
_DAY = 86_400
_MANY_URLS = 20
_MIN_SUBJECT_LETTERS = 10


@dataclass(frozen=True, slots=True)
class Rule:
    """A named check: ``check`` returns why it fired, or None when it did not.

    Its default score and description live in ``filters.symbols``.
    """

    symbol: str
    check: Callable[[Mail], str | None]


def _missing(header: str) -> Callable[[Mail], str | None]:
    def check(mail: Mail) -> str | None:
        return None if mail.header(header) is not None else f"no {header} header"

    return check


def _from_name_address(mail: Mail) -> str | None:
    name = mail.from_pair[0]
    found = _ADDRESS.search(name)
    if found and found.group(0).lower() != mail.from_address:
        return (
            f"From display name shows {found.group(0)!r} but the address is {mail.from_address!r}"
        )
    return None


def _message_id_no_at(mail: Mail) -> str | None:
    value = mail.header("Message-ID")
    return f"Message-ID {value.strip()[:60]!r} has no @" if value and "@" not in value else None


@lru_cache(maxsize=64)  # two rules read the same Date header of each message
def _epoch(value: str) -> float | None:
    parsed = parsedate_tz(value)
    if parsed is None or parsed[0] < 1970:
        return None
    # Computed by hand: mktime_tz would consult the local clock's zone rules.
    days = (parsed[0] - 1970) * 365.25 + (parsed[1] - 1) * 30.44 + parsed[2]
    return days * _DAY + parsed[3] * 3600 + parsed[4] * 60 + parsed[5] - (parsed[9] or 0)


def _date_unparsable(mail: Mail) -> str | None:
    value = mail.header("Date")
    if value is None or _epoch(value) is not None:
        return None
    return f"Date {value.strip()[:60]!r} is unparsable or before 1970"


def _date_future(mail: Mail) -> str | None:
    # Compared with the newest Received stamp, not the clock: deciding stays pure.
    value, received = mail.header("Date"), mail.header("Received")
    sent = _epoch(value) if value else None
    stamp = _epoch(received.rpartition(";")[2]) if received and ";" in received else None
    if sent is None or stamp is None or sent - stamp < _DAY:
        return None
    return f"Date is {(sent - stamp) / _DAY:.0f} days after the message was received"


def _html_only(mail: Mail) -> str | None:
    parts = mail.text_parts
    if parts and all(p.html for p in parts):
        return "only HTML text parts"
    return None


def _images_little_text(mail: Mail) -> str | None:
    images = mail.image_count
    if images >= 2 and mail.html and len(mail.text.split()) < 40 * images:
        return f"{images} images and {len(mail.text.split())} words"
    return None


def _many_urls(mail: Mail) -> str | None:
    count = len(mail.urls)
    return f"{count} distinct URLs" if count >= _MANY_URLS else None


def _url_ip(mail: Mail) -> str | None:
    hosts = [h for h in mail.domains if _IP_HOST.match(h)]
    return f"URL host is a raw IP: {hosts[0]}" if hosts else None


def _subject_caps(mail: Mail) -> str | None:
    letters = "".join(filter(str.isalpha, mail.subject))
    if len(letters) < _MIN_SUBJECT_LETTERS:
        return None
    upper = sum(map(str.isupper, letters)) / len(letters)
    return f"subject is {upper:.0%} capitals" if upper >= 0.7 else None


def _subject_bangs(mail: Mail) -> str | None:
    subject = mail.subject
    marks = subject.count("!") + subject.count("$")
    if "!!!" in subject or "$$$" in subject or marks >= 4:
        return f"subject has {marks} '!' or '$'"
    return None


def _extensions(mail: Mail) -> list[list[str]]:
    return [a.filename.lower().split(".")[1:] for a in mail.attachments if a.filename]


def _executable(mail: Mail) -> str | None:
    for exts in _extensions(mail):
        if exts and exts[-1].strip() in _EXECUTABLE:
            return f"executable attachment .{exts[-1].strip()}"
    return None


def _double_extension(mail: Mail) -> str | None:
    for exts in _extensions(mail):
        if len(exts) >= 2 and exts[-2] in _DECOY and exts[-1].strip() in _EXECUTABLE:
            return f"attachment disguised as .{exts[-2]} is .{exts[-1].strip()}"
    return None


def _malformed(mail: Mail) -> str | None:
    return f"malformed MIME: {', '.join(sorted(set(mail.defects)))}" if mail.malformed else None


def _empty_with_attachment(mail: Mail) -> str | None:
    if mail.attachments and not mail.text.strip():
        return f"no text, {len(mail.attachments)} attachment(s)"
    return None


RULES: tuple[Rule, ...] = (
    Rule("MISSING_DATE", _missing("Date")),
    Rule("MISSING_MESSAGE_ID", _missing("Message-ID")),
    Rule("MISSING_FROM", _missing("From")),
    Rule("FROM_NAME_OTHER_ADDRESS", _from_name_address),
    Rule("MESSAGE_ID_NO_AT", _message_id_no_at),
    Rule("DATE_UNPARSABLE", _date_unparsable),
    Rule("DATE_IN_FUTURE", _date_future),
    Rule("HTML_ONLY", _html_only),
    Rule("HTML_IMAGES_LITTLE_TEXT", _images_little_text),
    Rule("MANY_URLS", _many_urls),
    Rule("URL_IP_HOST", _url_ip),
    Rule("SUBJECT_ALL_CAPS", _subject_caps),
    Rule("SUBJECT_BANGS", _subject_bangs),
    Rule("ATTACHMENT_EXECUTABLE", _executable),
    Rule("ATTACHMENT_DOUBLE_EXT", _double_extension),
    Rule("MIME_MALFORMED", _malformed),
    Rule("EMPTY_BODY_ATTACHMENT", _empty_with_attachment),
)
