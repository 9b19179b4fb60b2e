"""``mailmoat evaluate``: fixed-FP misses, per-message scores, per-seed splits, --online."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def mailmoat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], capture_output=True, text=True,
        cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    done = mailmoat("generate", "--out", str(out), "--count", "80", "--viruses", "0")
    assert done.returncode == 0, done.stderr
    return out


def test_online_run_writes_scores_and_fixed_fp_misses(corpus: Path, tmp_path: Path) -> None:
    scores, report = tmp_path / "scores.tsv", tmp_path / "report.json"
    done = mailmoat("evaluate", "--corpus", str(corpus), "--online", "--order-seed", "3",
                    "--scores", str(scores), "--json", str(report))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "sm% at hm <= 0.1%" in done.stdout and "1-ROCA%" in done.stdout
    lines = scores.read_text().splitlines()
    assert lines[0] == "message\tlabel\tscore\tjudged" and len(lines) == 81
    assert {line.split("\t")[1] for line in lines[1:]} == {"ham", "spam"}
    found = json.loads(report.read_text())
    assert found["order_seed"] == 3 and {"0.1%", "0.01%"} <= set(found["at_fixed_fp"])


def test_split_runs_print_one_row_per_seed(corpus: Path, tmp_path: Path) -> None:
    report = tmp_path / "seeds.json"
    done = mailmoat("evaluate", "--corpus", str(corpus), "--seeds", "1", "2", "--json", str(report))
    assert done.returncode == 0, done.stderr
    per_seed = json.loads(report.read_text())["per_seed"]
    assert set(per_seed) == {"1", "2"}
    assert all(run["accuracy"]["ham"] + run["accuracy"]["spam"] == 40 for run in per_seed.values())


def test_plain_run_reports_misses_at_fixed_false_positive_rates(corpus: Path) -> None:
    done = mailmoat("evaluate", "--corpus", str(corpus))
    assert done.returncode == 0, done.stderr
    assert "sm% at hm <= 0.01%" in done.stdout and "false positives" in done.stdout


def test_scores_with_seeds_is_refused(corpus: Path, tmp_path: Path) -> None:
    done = mailmoat("evaluate", "--corpus", str(corpus), "--seeds", "1", "--scores", "x.tsv")
    assert done.returncode == 2 and "--scores needs a single run" in done.stderr
