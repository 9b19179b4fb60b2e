"""Digest and notice emails parsed back, hostile held mail escaped, and when digests are due."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default

import pytest

from quarantine import digest as digest_module
from quarantine.digest import (
    DIGEST_ACTIONS,
    VIRUS_ACTIONS,
    DigestItem,
    digest_due,
    render_digest,
    render_notice,
)
from quarantine.links import ACTIONS

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
DAY = 86400.0
MIDNIGHT = 1_699_920_000.0  # 2023-11-14 00:00 UTC
HOSTILE_SUBJECT = '<script>alert("x")</script> & "win" \r\nX-Injected: yes'
HOSTILE_SENDER = "evil@attacker.test\r\nBcc: victim@elsewhere.test"


def item(held_id: str, **overrides: object) -> DigestItem:
    fields: dict[str, object] = {
        "held_id": held_id,
        "sender": f"spammer-{held_id}@spam.test",
        "subject": f"Offer {held_id}",
        "received_at": NOW - 3600,
        "score": 12.5,
        "category": "spam",
        "reason": "BAYES_SPAM, DNSBL_ZEN",
    }
    fields.update(overrides)
    return DigestItem(**fields)  # type: ignore[arg-type]


def link(action: str, held: DigestItem) -> str:
    return f"https://q.example.test/l/{action}/{held.held_id}?t=tok&u=1"


def digest(items: list[DigestItem], recipient: str = "bob@example.test") -> bytes:
    return render_digest(
        recipient=recipient,
        items=items,
        base_url="https://q.example.test/",
        link_for=link,
        sender="quarantine@gw.example.test",
        now=NOW,
        hostname="gw.example.test",
    )


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=default)
    assert isinstance(msg, EmailMessage)
    return msg


def parts(raw: bytes) -> tuple[str, str]:
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_digest_headers_and_crlf_line_endings() -> None:
    raw = digest([item("a1"), item("a2")])
    assert b"\n" not in raw.replace(b"\r\n", b"")
    msg = parse(raw)
    assert msg["To"] == "bob@example.test"
    assert msg["From"] == "quarantine@gw.example.test"
    assert msg["Subject"] == "Quarantine digest: 2 messages held for you"
    assert msg["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"].endswith("@gw.example.test>")


def test_message_id_is_deterministic_but_differs_per_recipient_and_content() -> None:
    def mid(raw: bytes) -> str:
        return str(parse(raw)["Message-ID"])

    assert mid(digest([item("a1")])) == mid(digest([item("a1")]))
    assert mid(digest([item("a1")])) != mid(digest([item("a1")], "carol@example.test"))
    assert mid(digest([item("a1")])) != mid(digest([item("a2")]))


def test_each_item_listed_once_with_its_three_links_in_both_parts() -> None:
    items = [item("a1"), item("a2", received_at=NOW - 60), item("a1"), item("a3")]
    text, html = parts(digest(items))
    assert parse(digest(items))["Subject"] == "Quarantine digest: 3 messages held for you"
    for held_id in ("a1", "a2", "a3"):
        assert text.count(f"Offer {held_id}") == 1
        assert html.count(f"Offer {held_id}") == 1
        for action, label in DIGEST_ACTIONS:
            url = f"https://q.example.test/l/{action}/{held_id}?t=tok&u=1"
            assert text.count(f"{label}: {url}") == 1
            assert html.count(f'<a href="{url.replace("&", "&amp;")}">{label}</a>') == 1
    assert text.index("Offer a2") < text.index("Offer a1")  # newest first


def test_digest_actions_are_link_actions() -> None:
    assert {action for action, _ in DIGEST_ACTIONS + VIRUS_ACTIONS} == ACTIONS


def test_single_item_says_message() -> None:
    msg = parse(digest([item("a1")]))
    assert msg["Subject"] == "Quarantine digest: 1 message held for you"
    text, html = parts(digest([item("a1")]))
    assert "1 message addressed to bob@example.test was held in quarantine." in text
    assert "1 message addressed to bob@example.test was held in quarantine." in html
    text, _ = parts(digest([item("a1"), item("a2")]))
    assert "2 messages addressed to bob@example.test were held in quarantine." in text


def test_a_virus_shows_its_name_and_offers_a_release_request_not_a_release() -> None:
    virus = item("v1", category="virus", score=0.0, viruses=("Eicar-Test-Signature",),
                 reason="virus Eicar-Test-Signature")  # fmt: skip
    text, html = parts(digest([virus, item("s1")]))
    assert "  Held as a virus (Eicar-Test-Signature): virus Eicar-Test-Signature" in text
    assert "score 0.0" not in text and "score 0.0" not in html
    assert "Request release: https://q.example.test/l/request_release/v1?t=tok&u=1" in text
    for action in ("release", "allow_sender"):
        assert f"/l/{action}/v1" not in text and f"/l/{action}/v1" not in html
        assert f"/l/{action}/s1" in text  # spam keeps its links
    assert "Held as spam (score 12.5)" in text


def test_item_details_are_shown() -> None:
    text, html = parts(digest([item("a1", received_at=MIDNIGHT + 8 * 3600 + 90)]))
    for part in (text, html):
        assert "2023-11-14 08:01 UTC" in part
        assert "12.5" in part
        assert "BAYES_SPAM, DNSBL_ZEN" in part
        assert "spammer-a1@spam.test" in part
        assert "https://q.example.test/" in part


def test_hostile_subject_and_sender_are_escaped_and_flattened() -> None:
    raw = digest([item("x1", subject=HOSTILE_SUBJECT, sender=HOSTILE_SENDER, reason="<b>")])
    msg = parse(raw)
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    text, html = parts(raw)
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;win&quot;" in html
    assert "evil@attacker.test Bcc: victim@elsewhere.test" in html
    # In the text part the injected pieces stay on the line they came in on.
    lines = text.splitlines()
    assert not any(line.startswith(("X-Injected", "Bcc")) for line in lines)
    assert "  From: evil@attacker.test Bcc: victim@elsewhere.test" in lines


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029", "\x00"])
def test_any_line_breaking_character_is_flattened(separator: str) -> None:
    text, _ = parts(digest([item("x1", subject=f"one{separator}Release: https://evil.test/")]))
    assert "  Release: https://evil.test/" not in text.splitlines()
    assert "* one Release: https://evil.test/" in text.splitlines()


def test_long_subject_is_truncated() -> None:
    text, _ = parts(digest([item("x1", subject="A" * 5000)]))
    line = next(line for line in text.splitlines() if line.startswith("* "))
    assert len(line) == 2 + 200 and line.endswith("…")


def test_non_ascii_subject_survives() -> None:
    text, html = parts(digest([item("u1", subject="Réduction 50 % — 限定")]))
    assert "Réduction 50 % — 限定" in text
    assert "Réduction 50 % — 限定" in html


def test_empty_subject_and_sender_are_labelled() -> None:
    text, _ = parts(digest([item("e1", subject="", sender="")]))
    assert "* (no subject)" in text and "From: (no sender)" in text


def test_no_items_means_no_digest() -> None:
    with pytest.raises(ValueError, match="at least one"):
        digest([])


@pytest.mark.parametrize(
    "recipient",
    ["bob@example.test\r\nBcc: victim@elsewhere.test", "Bob <bob@example.test>", "not an address"],
)
def test_header_addresses_must_be_plain(recipient: str) -> None:
    with pytest.raises(ValueError):
        digest([item("a1")], recipient=recipient)


def test_bracketed_recipient_is_accepted() -> None:
    assert parse(digest([item("a1")], recipient="<bob@example.test>"))["To"] == "bob@example.test"


def test_hostname_with_injection_is_refused() -> None:
    with pytest.raises(ValueError, match="hostname"):
        render_notice(
            recipient="bob@example.test",
            sender="q@gw.example.test",
            base_url="https://q.example.test/",
            now=NOW,
            hostname="gw.example.test\r\nBcc: x@y.test",
        )


def test_notice_explains_the_new_account() -> None:
    raw = render_notice(
        recipient="bob@example.test",
        sender="quarantine@gw.example.test",
        base_url="https://q.example.test/",
        now=NOW,
        hostname="gw.example.test",
    )
    assert b"\n" not in raw.replace(b"\r\n", b"")
    msg = parse(raw)
    assert msg.get_content_type() == "text/plain"
    assert msg["Subject"] == "Your mail quarantine account was created"
    assert msg["To"] == "bob@example.test"
    assert msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_content()
    assert "bob@example.test" in body
    assert "14 days" in body
    assert "https://q.example.test/" in body


@pytest.mark.parametrize(
    ("recipient", "plain"),
    [
        ("bob@example.test", True),
        ("Jo.B+tag@Example.TEST", True),
        ("o'brien@example.test", True),
        ("n" * 40 + "@example.test", True),  # a long address still fits its own line
        ("x" * 70 + "@example.test", False),  # the body's first line passes 78: quoted-printable
        ("<bob@example.test>", False),  # brackets: the email package strips them
        ("bob smith@example.test", False),  # needs quoting
        ("bjørn@example.test", False),  # UTF-8 address
        ("bob@example.test\r\nBcc: x@y.test", False),  # refused by the email package
    ],
)
def test_notice_is_the_same_bytes_whichever_path_writes_it(
    recipient: str, plain: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain notices skip the email package; they must not differ from what it would write,
    and anything it would quote, fold or encode (or refuse) still goes through it."""
    args = {
        "recipient": recipient,
        "sender": "quarantine@gw.example.test",
        "base_url": "https://q.example.test/my/",
        "now": NOW + 0.25,
        "hostname": "gw.example.test",
    }

    def rendered() -> bytes | str:
        try:
            return render_notice(**args)  # type: ignore[arg-type]
        except ValueError as exc:
            return str(exc)

    fast = rendered()
    body = digest_module._notice_body(recipient, "https://q.example.test/my/", 14)
    written = digest_module._plain_notice(
        recipient, "quarantine@gw.example.test", "gw.example.test", NOW, body
    )
    assert (written is not None) == plain
    monkeypatch.setattr(digest_module, "_plain_notice", lambda *_: None)
    assert fast == rendered()


def test_notice_retention_follows_configuration() -> None:
    raw = render_notice(
        recipient="bob@example.test",
        sender="quarantine@gw.example.test",
        base_url="https://q.example.test/",
        now=NOW,
        hostname="gw.example.test",
        retention_days=21,
    )
    assert "kept for 21 days" in parse(raw).get_content()


H = 3600.0


@pytest.mark.parametrize(
    ("last_sent_at", "now", "tz", "due"),
    [
        # never sent: wait for the first 08:00
        (None, MIDNIGHT + 7 * H, 0, False),
        (None, MIDNIGHT + 8 * H, 0, True),
        (None, MIDNIGHT + 23 * H, 0, True),
        # sent today after 08:00: nothing more today, even just before midnight
        (MIDNIGHT + 8 * H, MIDNIGHT + 23.99 * H, 0, False),
        # ...nor after midnight before 08:00
        (MIDNIGHT + 8 * H, MIDNIGHT + DAY + 7.99 * H, 0, False),
        # ...but again from 08:00 the next day
        (MIDNIGHT + 8 * H, MIDNIGHT + DAY + 8 * H, 0, True),
        # sent late yesterday evening: today's 08:00 still gets one
        (MIDNIGHT + 23 * H, MIDNIGHT + DAY + 8.5 * H, 0, True),
        # sent before today's slot (e.g. at 02:00): due at 08:00
        (MIDNIGHT + 2 * H, MIDNIGHT + 9 * H, 0, True),
        # after a week of downtime: one digest, not seven
        (MIDNIGHT - 7 * DAY, MIDNIGHT + 10 * H, 0, True),
        (MIDNIGHT + 10 * H, MIDNIGHT + 10.1 * H, 0, False),
        # UTC+2: 08:00 local is 06:00 UTC
        (None, MIDNIGHT + 5.9 * H, 2, False),
        (None, MIDNIGHT + 6 * H, 2, True),
        (MIDNIGHT + 6 * H, MIDNIGHT + DAY + 5.9 * H, 2, False),
        (MIDNIGHT + 6 * H, MIDNIGHT + DAY + 6 * H, 2, True),
        # UTC-5: 08:00 local is 13:00 UTC; 02:00 UTC is still the previous local day
        (MIDNIGHT - 11 * H, MIDNIGHT + 2 * H, -5, False),
        (MIDNIGHT - 11 * H, MIDNIGHT + 13 * H, -5, True),
        # half-hour zone, UTC+5:30: 08:00 local is 02:30 UTC
        (None, MIDNIGHT + 2.5 * H, 5.5, True),
        (None, MIDNIGHT + 2.49 * H, 5.5, False),
        # a last-sent time in the future (clock step) sends nothing
        (MIDNIGHT + DAY + 9 * H, MIDNIGHT + 9 * H, 0, False),
    ],
)
def test_daily_digest_across_day_boundaries(
    last_sent_at: float | None, now: float, tz: float, due: bool
) -> None:
    assert (
        digest_due(
            mode="daily", every_hours=None, last_sent_at=last_sent_at, now=now, tz_offset_hours=tz
        )
        is due
    )


@pytest.mark.parametrize(
    ("opened_at", "now", "due"),
    [
        (MIDNIGHT + 22 * H, MIDNIGHT + 22 * H + 60, False),  # opened at 22:00: not a minute later
        (MIDNIGHT + 22 * H, MIDNIGHT + DAY + 7.9 * H, False),
        (MIDNIGHT + 22 * H, MIDNIGHT + DAY + 8 * H, True),  # the next 08:00
        (MIDNIGHT + 7 * H, MIDNIGHT + 8 * H, True),  # opened before today's send time
    ],
)
def test_first_daily_digest_waits_for_the_send_hour_after_the_account_opened(
    opened_at: float, now: float, due: bool
) -> None:
    found = digest_due(
        mode="daily", every_hours=None, last_sent_at=None, now=now, opened_at=opened_at
    )
    assert found is due


@pytest.mark.parametrize(
    ("send_hour", "now", "due"),
    [(0, MIDNIGHT, True), (23, MIDNIGHT + 22.9 * H, False), (23, MIDNIGHT + 23 * H, True)],
)
def test_daily_send_hour_is_configurable(send_hour: int, now: float, due: bool) -> None:
    assert (
        digest_due(mode="daily", every_hours=None, last_sent_at=None, now=now, send_hour=send_hour)
        is due
    )


@pytest.mark.parametrize(
    ("every", "last_sent_at", "now", "due"),
    [
        (6, None, NOW, True),
        (6, NOW, NOW, False),
        (6, NOW, NOW + 6 * H - 1, False),
        (6, NOW, NOW + 6 * H, True),
        (1, NOW, NOW + H, True),
        (24, MIDNIGHT + 23 * H, MIDNIGHT + DAY + 1 * H, False),  # crossing midnight is irrelevant
        (24, MIDNIGHT + 23 * H, MIDNIGHT + DAY + 23 * H, True),
        (6, NOW + H, NOW, False),  # future last-sent: wait
    ],
)
def test_every_n_hours(every: int, last_sent_at: float | None, now: float, due: bool) -> None:
    assert digest_due(mode="hours", every_hours=every, last_sent_at=last_sent_at, now=now) is due


@pytest.mark.parametrize("last_sent_at", [None, NOW - 30 * DAY])
def test_never_mode_never_sends(last_sent_at: float | None) -> None:
    assert digest_due(mode="never", every_hours=None, last_sent_at=last_sent_at, now=NOW) is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "weekly"}, "digest mode"),
        ({"mode": "hours"}, "every_hours"),
        ({"mode": "hours", "every_hours": 0}, "every_hours"),
        ({"mode": "hours", "every_hours": -3}, "every_hours"),
        ({"mode": "daily", "send_hour": 24}, "send_hour"),
        ({"mode": "daily", "tz_offset_hours": 15}, "tz_offset_hours"),
    ],
)
def test_bad_digest_settings_name_the_key(kwargs: dict[str, object], message: str) -> None:
    call: dict[str, object] = {"every_hours": None, "last_sent_at": None, "now": NOW}
    call.update(kwargs)
    with pytest.raises(ValueError, match=message):
        digest_due(**call)  # type: ignore[arg-type]


def test_viruses_and_unscanned_mail_get_only_a_delete_link() -> None:
    text, html = parts(digest([item("v1", category="virus"), item("u1", category="unscanned")]))
    for body in (text, html):
        assert "/l/delete/v1" in body and "/l/delete/u1" in body
        assert "/l/release/" not in body and "/l/allow_sender/" not in body
