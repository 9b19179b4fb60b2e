"""Anti-virus: EICAR wherever it hides, ClamAV hash and hex signatures, flags, zips, bad files."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import lzma
import tarfile
import zipfile
from pathlib import Path

import pytest

from filters.antivirus import (
    EICAR,
    EICAR_NAME,
    LIMITS_EXCEEDED,
    VirusDatabase,
    scan,
)
from filters.archives import ArchiveLimits
from filters.clamav import VirusSignatureError, hex_regex
from filters.mail import Mail
from tests.mailfactory import make_mail

EXAMPLES = Path(__file__).parents[2] / "examples" / "signatures"
PAYLOAD = b"Mailmoat harmless test payload: if a scanner flags this, the .hdb works.\n"
PAYLOAD_MD5 = "14557716fbd14416b8cccf00a24b6416"


def zipped(*members: tuple[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def tarred(*members: tuple[str, bytes], mode: str = "w:gz") -> bytes:
    """A tar archive of ``members``, compressed as ``mode`` says (``w:``, ``w:gz``, ``w:xz``...)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes gzipped: about a thousandth of that on the wire."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as stream:
        block = bytes(1024 * 1024)
        for _ in range(size // len(block)):
            stream.write(block)
    return buffer.getvalue()


def with_file(filename: str, data: bytes, ctype: str = "application/octet-stream") -> Mail:
    return make_mail(attachments=((filename, ctype, data),))


def located(mail: Mail, db: VirusDatabase, **kwargs: ArchiveLimits) -> set[tuple[str, str]]:
    return {(f.name, f.where) for f in scan(mail, db, **kwargs)}


BASE64_BODY = (
    b"Subject: b64\nMIME-Version: 1.0\nContent-Type: text/plain\n"
    b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(EICAR)
)


@pytest.mark.parametrize(
    ("mail", "where"),
    [
        (make_mail(f"see below\n{EICAR.decode()}\n"), "body text"),
        (Mail(BASE64_BODY), "body text"),
        (Mail(b"Subject: x\nX-Test: " + EICAR + b"\n\nhello\n"), "message"),
        (with_file("eicar.com", EICAR), "attachment eicar.com"),
        (with_file("eicar.zip", zipped(("eicar.com", EICAR))), "attachment eicar.zip/eicar.com"),
        (
            with_file("stored.zip", zipped(("e.com", EICAR), method=zipfile.ZIP_STORED)),
            "attachment stored.zip/e.com",
        ),
        (
            with_file("outer.zip", zipped(("inner.zip", zipped(("dir/e.com", EICAR))))),
            "attachment outer.zip/inner.zip/dir/e.com",
        ),
        (make_mail(attachments=(("", "application/x-msdownload", EICAR),)), "attachment #1"),
    ],
    ids=[
        "body",
        "base64-body",
        "header",
        "attachment",
        "zip",
        "stored-zip",
        "zip-in-zip",
        "no-name",
    ],
)
def test_eicar_found_once_where_it_is(mail: Mail, where: str) -> None:
    assert located(mail, VirusDatabase.builtin()) == {(EICAR_NAME, where)}


@pytest.mark.parametrize(
    "mail",
    [
        make_mail(),
        make_mail(html="<p>Hello <b>world</b></p>"),
        with_file("report.pdf", b"%PDF-1.4 " + bytes(range(256)) * 20, "application/pdf"),
        with_file("docs.zip", zipped(("a.txt", b"minutes"), ("b/c.txt", b"agenda"))),
    ],
    ids=["plain", "html", "pdf", "zip"],
)
def test_clean_messages_have_no_finding(mail: Mail) -> None:
    db = VirusDatabase.load(sorted(EXAMPLES.glob("*.[hn]db")))
    assert scan(mail, db) == ()


def test_two_infected_attachments_are_both_reported() -> None:
    mail = make_mail(
        attachments=(("a.com", "application/octet-stream", EICAR), ("b.com", "text/plain", EICAR))
    )
    assert {f.where for f in scan(mail, VirusDatabase.builtin())} == {
        "attachment a.com",
        "attachment b.com",
    }


@pytest.mark.parametrize(
    ("line", "data", "expected"),
    [
        (f"{PAYLOAD_MD5}:{len(PAYLOAD)}:Test.Sized", PAYLOAD, "Test.Sized"),
        (f"{PAYLOAD_MD5}:*:Test.Any", PAYLOAD, "Test.Any"),
        (f"{PAYLOAD_MD5.upper()}:*:Test.Upper", PAYLOAD, "Test.Upper"),
        (f"{PAYLOAD_MD5}:{len(PAYLOAD) + 1}:Test.WrongSize", PAYLOAD, None),
        (f"{PAYLOAD_MD5}:*:Test.Other", PAYLOAD + b"!", None),
        (f"{PAYLOAD_MD5}:{len(PAYLOAD)}:Test.Levels:51:255", PAYLOAD, "Test.Levels"),
    ],
)
def test_hdb(tmp_path: Path, line: str, data: bytes, expected: str | None) -> None:
    (tmp_path / "t.hdb").write_text(f"# comment\n\n{line}\n")
    db = VirusDatabase.load([tmp_path / "t.hdb"])
    found = located(with_file("payload.bin", data), db)
    assert found == ({(expected, "attachment payload.bin")} if expected else set())


def test_hdb_applies_inside_zips() -> None:
    db = VirusDatabase.load([EXAMPLES / "mailmoat.hdb"])
    mail = with_file("p.zip", zipped(("p.bin", PAYLOAD)))
    # An exact-size entry wins over a `*` entry for the same digest: one name per hash.
    assert {f.name for f in scan(mail, db)} == {"Mailmoat.Test.Payload_HDB-1"}


@pytest.mark.parametrize(
    ("hexsig", "offset", "data", "matches"),
    [
        ("4d4d54455354", "*", b"xxMMTESTyy", True),
        ("4d4d??455354", "*", b"xxMM!ESTyy", True),
        ("4d4d*455354", "*", b"MM and then much later EST", True),
        ("4d4d{2-4}5354", "*", b"MMabcST", True),
        ("4d4d{2-4}5354", "*", b"MMabcdefST", False),
        ("4d4d(41|4242)5a", "*", b"MMBBZ", True),
        ("4d4d(41|4242)5a", "*", b"MMCZ", False),
        ("4d4d4?", "*", b"MMO", True),
        ("4d4d?1", "*", b"MMq", True),
        ("4d4d?1", "*", b"MMr", False),
        ("4d4d54455354", "0", b"MMTEST trailing", True),
        ("4d4d54455354", "0", b" MMTEST", False),
        ("4d4d54455354", "2,3", b"12345MMTEST", True),
        ("4d4d54455354", "2,3", b"123456MMTEST", False),
    ],
)
def test_ndb(tmp_path: Path, hexsig: str, offset: str, data: bytes, matches: bool) -> None:
    (tmp_path / "t.ndb").write_text(f"Test.Hex-1:0:{offset}:{hexsig}\n")
    db = VirusDatabase.load([tmp_path / "t.ndb"])
    assert (db.match(data) == ["Test.Hex-1"]) is matches


def test_example_files_detect_their_markers() -> None:
    db = VirusDatabase.load(sorted(EXAMPLES.glob("*.[hn]db")))
    marker = b"..MAILMOAT-NDB-TEST WILDCARD and more END-OF-TEST.."
    assert db.match(marker) == ["Mailmoat.Test.Wildcards-1"]
    assert {f.name for f in scan(with_file("eicar.com", EICAR), db)} == {
        "Mailmoat.Test.EICAR_HDB-1",
        EICAR_NAME,
    }


@pytest.mark.parametrize(
    ("name", "mass_mailer", "never_release"),
    [
        ("Worm.Mydoom-1", True, False),
        ("worm.sober-7", True, False),
        ("Win.Trojan.Locker-3", False, True),
        ("Eicar-Test-Signature", False, False),
    ],
)
def test_flags_come_from_globs(name: str, mass_mailer: bool, never_release: bool) -> None:
    db = VirusDatabase(mass_mailer=("Worm.*",), never_release=("*.Trojan.*", "Ransom*"))
    finding = db.finding(name, "message")
    assert (finding.mass_mailer, finding.never_release) == (mass_mailer, never_release)


def test_flags_reach_scan_findings(tmp_path: Path) -> None:
    db = VirusDatabase.load(
        [EXAMPLES / "mailmoat.ndb"], mass_mailer=["*MassMailer*"], never_release=["*"]
    )
    (finding,) = scan(make_mail("hi MAILMOAT-MASS-MAILER-TEST there"), db)
    assert (finding.name, finding.mass_mailer, finding.never_release) == (
        "Mailmoat.Test.MassMailer-1",
        True,
        True,
    )


@pytest.mark.parametrize(
    ("filename", "content", "where"),
    [
        ("bad.hdb", "# ok\nnot-a-hash:12:Name\n", "bad.hdb:2"),
        ("bad.hdb", f"{PAYLOAD_MD5}:twelve:Name\n", "bad.hdb:1"),
        ("bad.hdb", f"{PAYLOAD_MD5}:12:\n", "bad.hdb:1"),
        ("bad.hdb", f"{PAYLOAD_MD5}:12:Name:x\n", "bad.hdb:1"),
        ("bad.ndb", "Name:0:*\n", "bad.ndb:1"),
        ("bad.ndb", "\nName:x:*:4142\n", "bad.ndb:2"),
        ("bad.ndb", "Name:0:EOF-10:41424344\n", "bad.ndb:1"),
        ("bad.ndb", "Name:0:*:41zz\n", "bad.ndb:1"),
        ("bad.ndb", "Name:0:*:41??42\n", "bad.ndb:1"),
        ("bad.ndb", "Name:0:*:4142{5-2}43\n", "bad.ndb:1"),
        ("bad.ndb", "Name:0:*:4142{}43\n", "bad.ndb:1"),
        ("bad.txt", "anything\n", "bad.txt"),
    ],
)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, filename: str, content: str, where: str
) -> None:
    (tmp_path / filename).write_text(content)
    with pytest.raises(VirusSignatureError, match=rf"{where}\b"):
        VirusDatabase.load([tmp_path / filename])


def test_missing_and_undecodable_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(VirusSignatureError, match=r"missing\.hdb: cannot read"):
        VirusDatabase.load([tmp_path / "missing.hdb"])
    (tmp_path / "latin.ndb").write_bytes(b"Good:0:*:4142\nBad\xff:0:*:4142\n")
    with pytest.raises(VirusSignatureError, match=r"latin\.ndb:2: not UTF-8"):
        VirusDatabase.load([tmp_path / "latin.ndb"])


def test_hex_regex_translation() -> None:
    assert hex_regex("4142??43*44{2}45{-3}46(47|4849)") == (b"AB.C.*?D.{2}E.{0,3}F(?:G|HI)")


SMALL = ArchiveLimits(max_depth=3, max_members=5, max_bytes=10_000)


@pytest.mark.parametrize(
    ("archive", "where"),
    [
        (zipped(("zeros.bin", bytes(1_000_000))), "attachment bomb.zip"),
        (zipped(*((f"f{i}.txt", b"x") for i in range(6))), "attachment bomb.zip"),
        (
            zipped(("1.zip", zipped(("2.zip", zipped(("3.zip", zipped(("4.txt", b"x")))))))),
            "attachment bomb.zip/1.zip/2.zip/3.zip",
        ),
    ],
    ids=["bytes", "members", "depth"],
)
def test_archive_limits_give_a_finding(archive: bytes, where: str) -> None:
    found = located(with_file("bomb.zip", archive), VirusDatabase.builtin(), limits=SMALL)
    assert found == {(LIMITS_EXCEEDED, where)}


def test_limits_are_shared_by_every_archive_in_a_message() -> None:
    half = zipped(("half.bin", bytes(6_000)))
    mail = make_mail(
        attachments=(
            ("a.zip", "application/zip", half),
            ("b.zip", "application/zip", half),
        )
    )
    assert located(mail, VirusDatabase.builtin(), limits=SMALL) == {
        (LIMITS_EXCEEDED, "attachment b.zip")
    }


@pytest.mark.parametrize(
    "data",
    [
        b"PK\x03\x04" + b"\x00garbage" * 50,
        zipped(("eicar.com", EICAR))[:40],
        zipped(("a.txt", b"hello" * 100)).replace(b"hello", b"HELLO", 1)[:-30] + bytes(30),
    ],
    ids=["garbage", "truncated", "damaged"],
)
def test_corrupt_archives_do_not_crash(data: bytes) -> None:
    assert scan(with_file("broken.zip", data), VirusDatabase.builtin()) == ()


def test_corrupt_member_does_not_hide_the_others() -> None:
    archive = bytearray(zipped(("a.txt", b"hello " * 200), ("b.com", EICAR)))
    start = archive.index(b"a.txt") + len("a.txt")
    archive[start : start + 4] = b"\xff" * 4  # scramble the start of a.txt's deflate stream
    found = located(with_file("mixed.zip", bytes(archive)), VirusDatabase.builtin())
    assert (EICAR_NAME, "attachment mixed.zip/b.com") in found


def test_member_names_are_made_safe_for_logs() -> None:
    mail = with_file("evil.zip", zipped(("line\nbreak.com", EICAR)))
    (finding,) = scan(mail, VirusDatabase.builtin())
    assert finding.where == "attachment evil.zip/line?break.com"


@pytest.mark.parametrize(
    ("filename", "data", "where"),
    [
        ("eicar.tar.gz", tarred(("dir/eicar.com", EICAR)), "attachment eicar.tar.gz/dir/eicar.com"),
        ("e.tgz", tarred(("e.com", EICAR), mode="w:gz"), "attachment e.tgz/e.com"),
        ("e.tar.bz2", tarred(("e.com", EICAR), mode="w:bz2"), "attachment e.tar.bz2/e.com"),
        ("e.tar.xz", tarred(("e.com", EICAR), mode="w:xz"), "attachment e.tar.xz/e.com"),
        ("e.tar", tarred(("e.com", EICAR), mode="w:"), "attachment e.tar/e.com"),
        ("eicar.com.gz", gzip.compress(EICAR), "attachment eicar.com.gz/eicar.com"),
        ("eicar.com.bz2", bz2.compress(EICAR), "attachment eicar.com.bz2/eicar.com"),
        ("eicar.com.xz", lzma.compress(EICAR), "attachment eicar.com.xz/eicar.com"),
        ("renamed.dat", gzip.compress(EICAR), "attachment renamed.dat/#1"),
        (
            "mixed.tar.gz",
            tarred(("a.zip", zipped(("b.txt.gz", gzip.compress(EICAR))))),
            "attachment mixed.tar.gz/a.zip/b.txt.gz/b.txt",
        ),
    ],
    ids=["tar.gz", "tgz", "tar.bz2", "tar.xz", "tar", "gz", "bz2", "xz", "renamed", "nested"],
)
def test_eicar_in_tar_and_compressed_files(filename: str, data: bytes, where: str) -> None:
    assert located(with_file(filename, data), VirusDatabase.builtin()) == {(EICAR_NAME, where)}


def test_a_gzip_bomb_stops_at_the_byte_limit() -> None:
    bomb = gzip_bomb(64 * 1024 * 1024)
    assert len(bomb) < 100_000  # a thousandfold: what makes it a bomb
    found = located(with_file("zeros.gz", bomb), VirusDatabase.builtin(), limits=SMALL)
    assert found == {(LIMITS_EXCEEDED, "attachment zeros.gz")}


@pytest.mark.parametrize(
    ("archive", "where"),
    [
        (tarred(("zeros.bin", bytes(2_000_000))), "attachment bomb.tar.gz"),
        (tarred(*((f"f{i}.txt", b"x") for i in range(6))), "attachment bomb.tar.gz"),
        (
            tarred(("1.tgz", tarred(("2.tgz", tarred(("3.tgz", tarred(("4.txt", b"x")))))))),
            "attachment bomb.tar.gz/1.tgz/2.tgz/3.tgz",
        ),
    ],
    ids=["bytes", "members", "depth"],
)
def test_tar_limits_are_the_zip_limits(archive: bytes, where: str) -> None:
    # A tar is at least 10 KiB of blocks: the byte limit leaves room for four of them.
    limits = ArchiveLimits(max_depth=3, max_members=5, max_bytes=1_000_000)
    found = located(with_file("bomb.tar.gz", archive), VirusDatabase.builtin(), limits=limits)
    assert found == {(LIMITS_EXCEEDED, where)}


@pytest.mark.parametrize(
    "data",
    [gzip.compress(EICAR)[:12], b"\x1f\x8b" + b"garbage" * 20, tarred(("e.com", EICAR))[:-200]],
    ids=["truncated-gz", "garbage-gz", "truncated-tar.gz"],
)
def test_corrupt_compressed_files_do_not_crash(data: bytes) -> None:
    assert located(with_file("broken.gz", data), VirusDatabase.builtin()) <= {
        (EICAR_NAME, "attachment broken.gz/broken")
    }
