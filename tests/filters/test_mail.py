"""Mail parsing: the views stages rely on, and no exception on any malformed input."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.mail import Envelope, Mail
from tests.mailfactory import make_mail

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def test_views_of_a_multipart_message() -> None:
    mail = make_mail(
        "See https://docs.example.org/guide and www.Shop.example/buy now.",
        html='<p>Hi <img src="x.gif"> <a href="http://198.51.100.7/x">go</a></p>',
        attachments=(("report.pdf", "application/pdf", b"%PDF-1.4 data"),),
    )
    assert mail.subject == "Planning meeting"
    assert mail.sender == "alice@partner.example"
    assert mail.recipients == ("bob@example.test",)
    assert [p.content_type for p in mail.text_parts] == ["text/plain", "text/html"]
    assert "https://docs.example.org/guide" in mail.urls
    assert mail.domains == ("docs.example.org", "www.shop.example", "198.51.100.7")
    assert mail.image_count == 1
    (pdf,) = mail.attachments
    assert (pdf.filename, pdf.content_type, pdf.size) == ("report.pdf", "application/pdf", 13)
    assert len(pdf.md5) == 32 and len(pdf.sha256) == 64
    assert "Hi" in mail.text and "<p>" not in mail.text
    assert not mail.malformed


def test_mail_is_immutable() -> None:
    mail = make_mail()
    with pytest.raises(AttributeError):
        mail.raw = b""  # type: ignore[misc]


def test_encoded_subject_is_decoded() -> None:
    mail = Mail(b"Subject: =?utf-8?B?w6ljb2xl?=\nFrom: a@b.example\n\nbody\n")
    assert mail.subject == "école"


def test_mbox_from_line_is_dropped() -> None:
    mail = Mail.from_file_bytes(b"From someone  Thu Aug 22 12:36:23 2002\nSubject: hi\n\nx\n")
    assert mail.subject == "hi"


def test_recipients_fall_back_to_headers_without_envelope() -> None:
    mail = Mail(b"To: A <a@x.example>, b@y.example\nCc: c@z.example\n\nbody\n")
    assert mail.recipients == ("a@x.example", "b@y.example", "c@z.example")


MALFORMED = {
    "truncated multipart": (
        b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nhalf'
    ),
    "bad base64": (
        b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!$$$not base64===\n"
    ),
    "unknown charset": b"Content-Type: text/plain; charset=x-no-such\n\n\xff\xfe caf\xe9\n",
    "nul bytes": b"Subject: a\x00b\n\n\x00\x00\x00body\x00\n",
    "endless header": b"Subject: " + b"A" * 1_000_000 + b"\n\nbody\n",
    "no header separator": b"this is not a header at all\nnor this\n",
    "empty": b"",
    "binary garbage": bytes(range(256)) * 50,
    "bad encoded word": b"Subject: =?utf-8?Q?=ZZ=?= =?bogus?B?x?=\n\nbody\n",
    "nested without end": (
        b'Content-Type: multipart/mixed; boundary="a"\n\n--a\n'
        b'Content-Type: multipart/alternative; boundary="b"\n\n--b\n'
    ),
    "header line only": b"From:",
}


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_input_never_raises(raw: bytes) -> None:
    mail = Mail(raw, Envelope(rcpt_tos=("bob@example.test",)))
    # Touch every view a stage may use: none of them may raise.
    views = (mail.headers, mail.subject, mail.sender, mail.text, mail.html, mail.urls)
    assert views is not None
    assert mail.domains is not None and mail.attachments is not None and mail.defects is not None


@pytest.mark.parametrize(
    "raw",
    [MALFORMED["nul bytes"], MALFORMED["no header separator"], MALFORMED["truncated multipart"]],
)
def test_malformed_input_is_marked(raw: bytes) -> None:
    assert Mail(raw).malformed


def test_long_header_value_is_truncated_for_matching() -> None:
    mail = Mail(MALFORMED["endless header"])
    assert len(mail.subject) <= 16_384


def test_for_recipients_shares_the_parse() -> None:
    mail = make_mail(to=("a@x.example", "b@y.example"))
    assert mail.subject
    other = mail.for_recipients(("b@y.example",))
    assert other.recipients == ("b@y.example",) and mail.recipients == (
        "a@x.example",
        "b@y.example",
    )
    assert other.__dict__["subject"] is mail.__dict__["subject"]


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: a\nContent-Type: text/plain; charset=utf-8\n\nline one\n\nline two\n",
        b"Subject: a\nnot a header\nX: y\n\nbody\n",
        b"Subject: a\r\n\r\nbody\r\n",
        b"Subject: a\n\n",
        b" continued\nSubject: a\n\nbody\n",
        b"Content-Type: message/rfc822\n\nSubject: inner\n\nx\n",
        b"Subject:  \n folded\n\tagain\nX-Empty:\n \nTo: a@b.example\n\nbody\n",
        b"Subject: caf\xc3\xa9 \xff\nContent-Type: text/plain; charset=latin-1\n\n\xe9\n",
        b"Subject: a\nFrom someone Mon Jan 1\nX: y\n\nbody\n",
        b":no name\nSubject: a\n\nbody\n",
        b"Bad Name: a\nSubject: b\n\nbody\n",
        b"\n\nbody starts at once\n",
        MALFORMED["truncated multipart"],
        MALFORMED["nul bytes"],
    ],
)
def test_single_part_shortcut_parses_like_the_stdlib(raw: bytes) -> None:
    from email.parser import BytesParser
    from email.policy import compat32

    expected = BytesParser(policy=compat32).parsebytes(raw)
    mail = Mail(raw)
    assert mail.message is not None
    assert mail.message.as_bytes() == expected.as_bytes()
    assert mail.message.items() == expected.items()
    if not expected.is_multipart():
        assert mail.message.get_payload() == expected.get_payload()
    assert [type(d) for d in mail.message.defects] == [type(d) for d in expected.defects]


@pytest.mark.parametrize(
    "text",
    [
        "see HTTP://Example.COM/x and www.Example.org, then http://a.example/b",
        "httpx www. http:// hhttp://a.example wwww.b.example http://x" + "y" * 2100 + " www.c.d",
        "caf\u00e9 \u0130 http://b\u00fccher.example/\u00e9 WWW.X.EXAMPLE",
        "caf\u00e9 http://b\u00fccher.example/\u00c9T\u00c9 WWW.\u0416.EXAMPLE",
        "\u00e9 HTTP\u017f://long-s.example http://x.example",
        "no links at all",
    ],
)
def test_url_finder_matches_the_case_insensitive_pattern(text: str) -> None:
    from filters.mail import _URL_RE, _find_urls

    assert _find_urls(text) == _URL_RE.findall(text)


@settings(max_examples=2000)
@given(
    st.lists(
        st.sampled_from(
            [
                "http",
                "HTTPS",
                "://",
                "www.",
                "WwW.",
                "x",
                " ",
                "<",
                "\u00e9",
                "\u00c9",
                "\u0130",
                "\u017f",
                "\u212a",
                "\u0416",
            ]
        ),
        max_size=30,
    )
)
def test_url_finder_matches_the_pattern_on_any_text(pieces: list[str]) -> None:
    from filters.mail import _URL_RE, _find_urls

    text = "".join(pieces)
    assert _find_urls(text) == _URL_RE.findall(text)


def test_only_long_s_and_dotted_capital_i_stop_the_lower_case_search() -> None:
    """The claims ``_find_urls`` rests on, over every code point outside ASCII."""
    import sys

    letters = {c: re.compile(re.escape(c), re.IGNORECASE) for c in "https:/w."}
    others = [chr(c) for c in range(128, sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    assert [o for o in others if any(p.fullmatch(o) for p in letters.values())] == ["\u017f"]
    assert [o for o in others if len(o.lower()) != 1] == ["\u0130"]
    assert not [o for o in others if set(o.lower()) & set("https:/w.")]


_ADDRESS_PIECES = [
    "a@b.example", "Ann.Lee+x@mail.example", "<c@d.example>", "Bob Smith ", "Bob  ", '"S, B" ',
    '"" ', '"q\\"x" ', "<", ">", ",", ", ", " ", "\t", "\r\n ", "(note) ", "a@", "@b", "x.y",
    "grp: a@b.example;", "é", '"', "a..b@c.example", "<@route:e@f.example>",
]  # fmt: skip


@settings(max_examples=3000)
@given(st.lists(st.sampled_from(_ADDRESS_PIECES), max_size=8).map("".join))
def test_simple_address_lists_read_as_the_stdlib_reads_them(value: str) -> None:
    """The shortcut answers as ``getaddresses`` does, or leaves the list to it."""
    from email.utils import getaddresses

    from filters.mail import _simple_addresses

    simple = _simple_addresses(value)
    assert simple is None or simple == getaddresses([value])


def test_common_address_forms_take_the_shortcut() -> None:
    from email.utils import parseaddr

    from filters.mail import _simple_addresses

    value = 'Ann Lee <ann@a.example>, "Lee, Bo" <bo@b.example>,\n\t<c@c.example>, d@d.example'
    assert _simple_addresses(value) == [
        ("Ann Lee", "ann@a.example"),
        ("Lee, Bo", "bo@b.example"),
        ("", "c@c.example"),
        ("", "d@d.example"),
    ]
    assert _simple_addresses("Bob a@b.example") is None  # the stdlib reads "Bob a" as a local part
    assert _simple_addresses("a@b.example (Ann)") is None  # a comment names the address
    # The rest is still read by the stdlib.
    mail = Mail(b"From: Ann (boss) <ann@a.example>\nTo: x@y.example (X), Z <z@z.example>\n\nhi\n")
    assert mail.from_pair == parseaddr("Ann (boss) <ann@a.example>")
    assert mail.recipients == ("x@y.example", "z@z.example")
