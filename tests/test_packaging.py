"""The wheel holds the product only, and ``mailmoat serve`` works from it on a first run.

The wheel is built offline (no build isolation) and unpacked into a folder;
its code runs with ``python -S`` so that neither the source tree nor the
editable install can stand in for it: only the wheel's files and the
dependencies' site-packages are on the path, from an empty working directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("filters", "loadtest", "quarantine", "service", "simulator", "slamonitor", "store")


def test_the_package_list_matches_the_source_tree() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for root in PRODUCT
        for init in (ROOT / root).rglob("__init__.py")
    }
    assert listed == found | {"mailmoat_examples"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools writes build/ and egg-info beside the sources it builds.
    source = tmp_path_factory.mktemp("source") / "mailmoat"
    skip = (".*", "data", "build", "bench", "tests", "*.egg-info", "__pycache__")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*skip))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    [built] = out.glob("mailmoat-*.whl")
    return built


def test_the_wheel_installs_only_the_product(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.startswith("mailmoat-")}
    assert tops == {*PRODUCT, "mailmoat_examples"}
    assert "mailmoat_examples/gateway.toml" in names
    assert "mailmoat_examples/policy.toml" in names
    assert "mailmoat_examples/signatures/spam.sigs" in names


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment that sees the unpacked wheel and the dependencies, not the source."""
    site = tmp_path_factory.mktemp("site")
    zipfile.ZipFile(wheel).extractall(site)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILMOAT_", "PYTHON"))}
    env["PYTHONPATH"] = os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]])
    env["MAILMOAT_SMTP__PORT"] = "0"
    env["MAILMOAT_HTTP__PORT"] = "0"
    return env


def mailmoat(*args: str) -> list[str]:
    return [sys.executable, "-S", "-c", "import sys; from service.cli import main; "
            f"sys.exit(main({list(args)!r}))"]  # fmt: skip


def test_serve_from_the_wheel_first_run_and_lock(installed: dict[str, str], tmp_path: Path) -> None:
    gateway_dir = tmp_path

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(mailmoat(*args), cwd=gateway_dir, env=installed, text=True,
                              capture_output=True, timeout=120, check=False)  # fmt: skip

    first = run("serve")
    assert first.returncode == 2, first.stderr
    assert "no token model at data/model.npz" in first.stderr
    assert "mailmoat serve --train-sample" in first.stderr

    server = subprocess.Popen(mailmoat("serve", "--train-sample"), cwd=gateway_dir,
                              env=installed, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline(), server.stdout.readline()]
        assert "trained a sample model" in lines[0], lines
        assert (gateway_dir / "data/model.npz").is_file()
        assert lines[1].startswith("mailmoat: SMTP on 127.0.0.1:"), lines

        second = run("serve")
        assert second.returncode == 1, second.stderr
        assert f"another gateway (pid {server.pid}) is running on data/mailmoat.db" in (
            second.stderr
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        if server.stdout is not None:
            server.stdout.close()
    assert server.returncode == 0
