"""The ``mailmoat`` command line, run as a user runs it: train, evaluate, scan, token,
submission-user."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def mailmoat(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], capture_output=True, text=True,
        cwd=ROOT, env=env, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model.npz"
    done = mailmoat("train", "--corpus", str(EXAMPLES / "mail"), "--labels", "labels.tsv",
                    "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "trained on 2 ham + 2 spam" in done.stdout
    return out


def test_scan_prints_a_verdict_per_file(model: Path) -> None:
    files = sorted(str(p) for p in (EXAMPLES / "mail").glob("*.eml"))
    done = mailmoat("scan", "--policy", str(EXAMPLES / "policy.toml"), "--model", str(model),
                    *files)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "05-virus-eicar-zip.eml: quarantine (virus" in done.stdout
    assert "06-content-exe.eml: delete (content" in done.stdout
    assert "04-spam-blacklisted-sender.eml: quarantine (spam" in done.stdout


def test_evaluate_writes_a_json_report(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    done = mailmoat("evaluate", "--corpus", str(EXAMPLES / "mail"), "--labels", "labels.tsv",
                    "--model", str(model), "--json", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["messages"] == 4 and report["accuracy"]["ham"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("scan", "/nonexistent.eml"), "cannot read"),
        (("scan", "--policy", "/nonexistent.toml", "x"), "cannot read"),
        (("train", "--corpus", "/nonexistent", "--out", "/tmp/x.npz"), "no such corpus"),
        (("evaluate", "--corpus", str(EXAMPLES / "mail"), "--model", "/nonexistent.npz"),
         "nonexistent.npz"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_error(args: tuple[str, ...], message: str) -> None:
    done = mailmoat(*args)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr


def test_token_create_list_revoke(tmp_path: Path) -> None:
    env = {"MAILMOAT_STORE__PATH": str(tmp_path / "db.sqlite"), "PATH": "/usr/bin:/bin"}
    created = mailmoat("token", "create", "--domain", "example.test", env=env)
    assert created.returncode == 0, created.stderr
    token_id = re.search(r"token (\w+) created", created.stdout)
    assert token_id is not None and "mm_" in created.stdout
    listed = mailmoat("token", "list", env=env)
    assert f"{token_id.group(1)}  active" in listed.stdout
    assert mailmoat("token", "revoke", token_id.group(1), env=env).returncode == 0
    assert "revoked" in mailmoat("token", "list", env=env).stdout
    assert mailmoat("token", "revoke", token_id.group(1), env=env).returncode == 1
    assert mailmoat("token", "create", env=env).returncode == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--domain", "not-registered.test"), "not-registered.test not among the gateway's"),
        (("--domain", "example.test", "--operator"), "not both"),
        ((), "give --domain"),
    ],
)
def test_token_create_refuses_what_it_cannot_mean(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    env = {"MAILMOAT_STORE__PATH": str(tmp_path / "db.sqlite"), "PATH": "/usr/bin:/bin"}
    done = mailmoat("token", "create", *args, env=env)
    assert done.returncode == 2 and message in done.stderr.replace("\n", " ")
    assert "mm_" not in done.stdout


def test_submission_users_add_list_remove(tmp_path: Path) -> None:
    """Passwords come from stdin and are stored only as scrypt hashes; bad input exits 2."""
    db = tmp_path / "db.sqlite"
    env = {"MAILMOAT_STORE__PATH": str(db), "PATH": "/usr/bin:/bin"}

    def user(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "service.cli", "submission-user", *args], input=stdin,
            capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False,
        )  # fmt: skip

    added = user("add", "example.test", "alice@example.test", stdin="a long secret\n")
    assert added.returncode == 0, added.stderr
    assert "submission user alice@example.test added for example.test" in added.stdout
    again = user("add", "example.test", "alice@example.test", stdin="another secret\n")
    assert again.returncode == 2 and "already exists" in again.stderr
    short = user("add", "example.test", "bob@example.test", stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    unknown = user("add", "nowhere.test", "carol@nowhere.test", stdin="a long secret\n")
    assert unknown.returncode == 2 and "nowhere.test is not among the gateway's domains" in (
        unknown.stderr
    )
    assert user("list").stdout.split() == ["example.test", "alice@example.test"]
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute("SELECT password_hash FROM submission_users").fetchone()
    assert stored.startswith("scrypt$") and "a long secret" not in stored
    assert user("remove", "example.test", "alice@example.test").returncode == 0
    gone = user("remove", "example.test", "alice@example.test")
    assert gone.returncode == 2 and "no submission user" in gone.stderr
    assert user("list", "example.test").stdout == ""
