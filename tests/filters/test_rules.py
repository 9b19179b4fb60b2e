"""Each heuristic rule fires on the message built to trip it and stays quiet on a plain one."""

from __future__ import annotations

import pytest

from filters.mail import Mail
from filters.rules import RULES, Rule
from filters.symbols import SYMBOLS

HEADERS = {
    "From": "Alice <alice@example.org>",
    "To": "bob@example.net",
    "Date": "Mon, 02 Sep 2002 10:00:00 +0000",
    "Message-ID": "<1@example.org>",
    "Subject": "Lunch on Friday",
}
BODY = "Shall we meet at noon? The usual place.\n"


def build(
    headers: dict[str, str | None] | None = None,
    body: str = BODY,
    content_type: str = "text/plain",
    raw_body: str | None = None,
) -> Mail:
    """A message from the plain defaults; a header mapped to None is dropped."""
    merged: dict[str, str | None] = {**HEADERS, **(headers or {})}
    lines = [f"{k}: {v}" for k, v in merged.items() if v is not None]
    # raw_body brings its own MIME headers and blank line.
    if raw_body is None:
        raw_body = f"Content-Type: {content_type}\n\n{body}"
    return Mail(("\n".join(lines) + "\n" + raw_body).encode())


def rule(symbol: str) -> Rule:
    return next(r for r in RULES if r.symbol == symbol)


def multipart(*parts: tuple[str, str, str | None]) -> str:
    """A multipart/mixed body from (content type, payload, filename) parts."""
    chunks = []
    for ctype, payload, filename in parts:
        disposition = (
            f'\nContent-Disposition: attachment; filename="{filename}"' if filename else ""
        )
        chunks.append(f"--b\nContent-Type: {ctype}{disposition}\n\n{payload}\n")
    return (
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n'
        + "".join(chunks)
        + "--b--\n"
    )


def attached(filename: str, ctype: str = "application/octet-stream") -> Mail:
    """A short text part followed by one attachment."""
    return build(raw_body=multipart(("text/plain", "hi", None), (ctype, "MZ", filename)))


RECEIVED = "from a by b; Mon, 02 Sep 2002 10:00:00 +0000"
BROKEN_MIME = 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\nno parts\n'
IMAGES_HTML = "<html><body>" + '<img src="http://x.example/a.gif">' * 3 + "Buy</body></html>"
URLS = "\n".join(f"http://site{i}.example.com/" for i in range(25))
FIRES = [
    ("MISSING_DATE", build({"Date": None})),
    ("MISSING_MESSAGE_ID", build({"Message-ID": None})),
    ("MISSING_FROM", build({"From": None})),
    ("FROM_NAME_OTHER_ADDRESS", build({"From": '"service@paypal.com" <x@evil.example>'})),
    ("MESSAGE_ID_NO_AT", build({"Message-ID": "<12345.example>"})),
    ("DATE_UNPARSABLE", build({"Date": "sometime last week"})),
    ("DATE_UNPARSABLE", build({"Date": "Mon, 02 Sep 0102 10:00:00 +0000"})),
    ("DATE_IN_FUTURE", build({"Received": RECEIVED, "Date": "Tue, 02 Sep 2003 10:00:00 +0000"})),
    ("HTML_ONLY", build(body="<p>Hello</p>", content_type="text/html")),
    ("HTML_IMAGES_LITTLE_TEXT", build(body=IMAGES_HTML, content_type="text/html")),
    ("MANY_URLS", build(body=URLS)),
    ("URL_IP_HOST", build(body="Click http://192.168.10.20/login now")),
    ("SUBJECT_ALL_CAPS", build({"Subject": "FREE MONEY FOR YOU TODAY"})),
    ("SUBJECT_BANGS", build({"Subject": "Act now!!!"})),
    ("SUBJECT_BANGS", build({"Subject": "Earn $$$ fast"})),
    ("ATTACHMENT_EXECUTABLE", attached("setup.exe")),
    ("ATTACHMENT_DOUBLE_EXT", attached("invoice.pdf.scr")),
    ("MIME_MALFORMED", build(raw_body=BROKEN_MIME)),
    ("EMPTY_BODY_ATTACHMENT", build(raw_body=multipart(("application/pdf", "JVBERi0=", "a.pdf")))),
]


@pytest.mark.parametrize(
    ("symbol", "mail"), FIRES, ids=[f"{s}-{i}" for i, (s, _) in enumerate(FIRES)]
)
def test_rule_fires_with_a_reason(symbol: str, mail: Mail) -> None:
    reason = rule(symbol).check(mail)
    assert reason, f"{symbol} did not fire"


@pytest.mark.parametrize("symbol", [r.symbol for r in RULES])
def test_no_rule_fires_on_a_plain_message(symbol: str) -> None:
    plain = build({"Received": RECEIVED})
    assert rule(symbol).check(plain) is None


@pytest.mark.parametrize(
    ("symbol", "mail"),
    [
        ("FROM_NAME_OTHER_ADDRESS", build({"From": '"alice@example.org" <alice@example.org>'})),
        ("SUBJECT_ALL_CAPS", build({"Subject": "OK"})),
        ("ATTACHMENT_DOUBLE_EXT", attached("report.v2.zip", "application/zip")),
        ("HTML_ONLY", attached("x.html", "text/html")),
        ("DATE_IN_FUTURE", build({"Date": "Tue, 02 Sep 2003 10:00:00 +0000"})),
    ],
)
def test_near_misses_do_not_fire(symbol: str, mail: Mail) -> None:
    assert rule(symbol).check(mail) is None


def test_symbols_are_unique_upper_snake_with_modest_scores() -> None:
    symbols = [r.symbol for r in RULES]
    assert len(set(symbols)) == len(symbols)
    assert all(s.isupper() and " " not in s for s in symbols)
    assert all(0 < SYMBOLS[s].score <= 3.0 for s in symbols)
