"""Spam signatures: normalisation, exact and fuzzy matches, the file format and live reload."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import tlsh

from filters.mail import Mail
from filters.signatures import (
    SIGNATURE_EXACT,
    SIGNATURE_FUZZY,
    SignatureDatabase,
    SignatureFile,
    SignatureFileError,
    check,
    fingerprint,
    normalise,
    signature_lines,
)
from filters.verdict import Action, Stage
from tests.mailfactory import make_mail

EXAMPLES = Path(__file__).parents[2] / "examples" / "signatures"

# The two invented campaigns examples/signatures/spam.sigs was made from.
WATCHES = """Dear friend,

Luxury watches at 90% off! Our warehouse clearance ends this Friday and every
model must go: divers, chronographs and dress watches, all with a two year
warranty and free express shipping to your door.

Order now at http://watches.example.invalid/sale?id=7f3a9c2e41b8d6 and quote
code 55821 at checkout for a further 10% discount.

To stop receiving these offers reply with REMOVE in the subject line.
"""
LOAN = """Congratulations! You have been pre-approved for a personal loan of up to
$25,000 with no credit check and no paperwork. Funds arrive in your account
within 24 hours of approval. Rates from 1.9% APR for a limited time only.

Claim your offer: http://loans.example.invalid/apply/a81f22c9e07b4d35
Reference number 4471-2290-1183.
"""
# TLSH needs about a kilobyte to be stable under small edits, so fuzzy tests use a longer text.
PHARMACY = """Hello,

Are you tired of paying full price for the medicines you need every month?
Our licensed online pharmacy ships genuine brand and generic products from
certified suppliers straight to your home, in discreet packaging, with no
prescription hassle and no waiting rooms.

This week only we are running our biggest seasonal sale ever:

  * Pain relief, allergy and sleep aids at up to 70% below high street prices
  * Vitamins, minerals and supplements: buy two bottles, get a third free
  * Weight management programmes with a personal coach for the first month
  * Skin care and hair care ranges from leading laboratories

Every order is checked by our pharmacists before it leaves the warehouse,
and every parcel is tracked from our door to yours. Most customers receive
their package within three working days, and returns are free for thirty
days if you are not completely satisfied.

Thousands of happy customers already trust us. Here is what one of them
wrote last month: "I could not believe how easy it was. I placed my order on
Monday evening and the parcel was on my doorstep by Wednesday afternoon. The
prices are so much better than my local chemist that I will never go back."

Visit our secure shop today, browse more than two thousand products and
use the voucher printed below at checkout to unlock an extra discount on
your first order. The voucher is valid until the end of the month and can
be combined with the seasonal sale prices.

Our friendly support team is available seven days a week by phone, chat and
email to answer any question about your order, delivery or our products.

Stay healthy and save money,
The Customer Care Team

You are receiving this message because you subscribed to our newsletter.
If you no longer wish to receive offers from us, follow the link at the
bottom of our website to update your preferences.
"""
UNRELATED = """Hi team, the quarterly planning meeting moves to Thursday at 10:00 in
room 4B. Please bring the revised budget figures and the hiring plan for the
support group; Maria will present the customer survey results afterwards.
"""


def text_mail(text: str) -> Mail:
    return Mail(b"Subject: offer\nContent-Type: text/plain\n\n" + text.encode())


def database_of(*campaigns: tuple[str, str]) -> SignatureDatabase:
    lines = list(signature_lines((name, text_mail(text)) for name, text in campaigns))
    exact = {d: n for kind, d, n in (line.split() for line in lines) if kind == "exact"}
    fuzzy = tuple((d, n) for kind, d, n in (line.split() for line in lines) if kind == "fuzzy")
    return SignatureDatabase(exact, fuzzy)


DB = database_of(("Watches-1", WATCHES), ("Loan-1", LOAN), ("Pharmacy-1", PHARMACY))
EDITED = (
    PHARMACY.replace("Hello,", "Hi Bob,")
    .replace("tired", "sick")
    .replace("genuine", "real")
    .replace("Monday", "Tuesday")
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello   World\n\tagain ", b"hello world again"),
        ("Call 555-0123 now", b"call 0-0 now"),
        ("Dear <Bob@Example.test>, hi", b"dear @ hi"),
        ("track id=9f8e7d6c5b4a3f2e1d", b"track ~"),
        ("see http://x.example/u/8812/c", b"see ~"),
        ("supercalifragilistic words", b"supercalifragilistic words"),
        ("token QUJDRDEyMzQ1Njc4OTA= end", b"token ~ end"),
        ("Grüße 2024", "grüße 0".encode()),
        ("", b""),
    ],
)
def test_normalise(text: str, expected: bytes) -> None:
    assert normalise(text) == expected


def test_resends_with_per_recipient_noise_hash_alike() -> None:
    first = WATCHES.replace("Dear friend", "Dear alice@one.example")
    second = WATCHES.replace("Dear friend", "Dear bob@two.example").replace("55821", "10442")
    second = second.replace("7f3a9c2e41b8d6", "00c1d2e3f4a5b6")
    assert fingerprint(text_mail(first)) == fingerprint(text_mail(second))


@pytest.mark.parametrize(
    ("text", "symbol", "name"),
    [
        (WATCHES, SIGNATURE_EXACT, "Watches-1"),
        (WATCHES.upper().replace("\n", "   \n"), SIGNATURE_EXACT, "Watches-1"),
        (EDITED, SIGNATURE_FUZZY, "Pharmacy-1"),
        (PHARMACY.replace("biggest", "largest"), SIGNATURE_FUZZY, "Pharmacy-1"),
        (UNRELATED, None, None),
        ("Buy now!", None, None),
    ],
    ids=["exact", "case-and-space", "fuzzy-edits", "fuzzy-one-word", "unrelated", "short"],
)
def test_check(text: str, symbol: str | None, name: str | None) -> None:
    hits = check(text_mail(text), DB, Action.TAG_SUBJECT, max_distance=40)
    if symbol is None:
        assert hits == ()
        return
    (hit,) = hits
    assert (hit.symbol, hit.stage, hit.action, hit.score) == (
        symbol,
        Stage.SIGNATURES,
        Action.TAG_SUBJECT,
        10.0,
    )
    assert repr(name) in hit.reason


def test_fuzzy_reason_gives_the_distance_and_respects_the_limit() -> None:
    edited = text_mail(EDITED)
    (hit,) = check(edited, DB, Action.QUARANTINE, max_distance=40)
    distance = int(hit.reason.rsplit(" ", 1)[1].rstrip(")"))
    assert 0 < distance <= 40
    assert check(edited, DB, Action.QUARANTINE, max_distance=distance - 1) == ()


def test_short_body_has_no_fuzzy_hash() -> None:
    fp = fingerprint(text_mail("Win a prize today, click here now!"))
    assert fp.tlsh is None
    assert len(fp.sha256) == 64


def test_empty_database_is_a_no_op() -> None:
    assert check(text_mail(WATCHES), SignatureDatabase.empty(), Action.QUARANTINE, 40) == ()


def test_length_buckets_never_skip_a_match() -> None:
    """The bucket shortcut gives the same nearest signature as comparing with every one."""
    rng = random.Random(7)
    words = (PHARMACY + WATCHES + UNRELATED).split()
    texts = [" ".join(rng.choices(words, k=rng.randrange(20, 400))) for _ in range(60)]
    digests = [d for d in (fingerprint(text_mail(t)).tlsh for t in texts) if d]
    db = SignatureDatabase(fuzzy=tuple((d, f"s{i}") for i, d in enumerate(digests[:30])))
    for probe in digests[30:]:
        for limit in (12, 40, 100, 300):
            brute = min((tlsh.diff(probe, d), n) for d, n in db.fuzzy)
            assert db.closest(probe, limit) == (brute if brute[0] <= limit else None)


def test_example_file_matches_its_campaigns() -> None:
    db = SignatureDatabase.load(EXAMPLES / "spam.sigs")
    assert len(db) == 4
    for text, symbol in ((WATCHES, SIGNATURE_EXACT), (LOAN.replace("24", "48"), SIGNATURE_EXACT)):
        assert [h.symbol for h in check(text_mail(text), db, Action.QUARANTINE, 40)] == [symbol]
    assert check(make_mail(UNRELATED), db, Action.QUARANTINE, 40) == ()


def test_signature_lines_skip_duplicates_and_comment_short_bodies() -> None:
    mails = [("A", text_mail(WATCHES)), ("B", text_mail(WATCHES)), ("C", text_mail("hi"))]
    lines = list(signature_lines(mails))
    assert [line.split()[0] for line in lines] == ["exact", "fuzzy", "#"]
    assert lines[2] == "# C: body too short for a signature"
    with pytest.raises(ValueError, match="one non-empty line"):
        list(signature_lines([("bad\nname", text_mail(WATCHES))]))


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("exact deadbeef Short\n", 1),
        ("# fine\nfuzzy T1ZZ Bad\n", 2),
        (f"exact {'a' * 64}\n", 1),
        (f"md5 {'a' * 64} Name\n", 1),
        (f"\n\nfuzzy {'A' * 69} Name\n", 3),
    ],
)
def test_bad_lines_are_rejected_with_file_and_line(tmp_path: Path, content: str, line: int) -> None:
    path = tmp_path / "spam.sigs"
    path.write_text(content)
    with pytest.raises(SignatureFileError, match=rf"spam\.sigs:{line}: expected"):
        SignatureDatabase.load(path)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SignatureFileError, match="cannot read"):
        SignatureDatabase.load(tmp_path / "absent.sigs")


def test_names_keep_spaces_and_digests_any_case(tmp_path: Path) -> None:
    path = tmp_path / "spam.sigs"
    fp = fingerprint(text_mail(WATCHES))
    assert fp.tlsh is not None
    path.write_text(f"exact {fp.sha256.upper()} Watch campaign\nfuzzy {fp.tlsh[2:].lower()} W\n")
    db = SignatureDatabase.load(path)
    assert db.exact == {fp.sha256: "Watch campaign"}
    assert db.fuzzy == ((fp.tlsh, "W"),)


def _write(path: Path, text: str, mtime: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime, mtime))  # explicit mtimes: coarse clocks cannot hide a change


def test_reload_picks_up_changes_and_keeps_the_old_snapshot_on_a_broken_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spam.sigs"
    watches = next(signature_lines([("Watches-1", text_mail(WATCHES))]))
    loan = next(signature_lines([("Loan-1", text_mail(LOAN))]))
    _write(path, watches + "\n", 1_000_000_000)
    live = SignatureFile(path)
    assert live.reload_if_changed() is False
    first = live.database
    assert len(first) == 1

    _write(path, f"{watches}\n{loan}\n", 2_000_000_000)
    assert live.reload_if_changed() is True
    assert len(live.database) == 2
    assert first is not live.database and len(first) == 1

    good = live.database
    _write(path, f"{watches}\nnonsense\n", 3_000_000_000)
    with pytest.raises(SignatureFileError, match=r"spam\.sigs:2"):
        live.reload_if_changed()
    assert live.database is good
    assert live.reload_if_changed() is False  # reported once per change, not once per poll

    path.unlink()
    with pytest.raises(SignatureFileError, match="cannot read"):
        live.reload_if_changed()
    assert live.database is good

    _write(path, loan + "\n", 4_000_000_000)
    assert live.reload_if_changed() is True
    assert list(live.database.exact.values()) == ["Loan-1"]


def test_missing_file_at_startup_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SignatureFileError):
        SignatureFile(tmp_path / "absent.sigs")
