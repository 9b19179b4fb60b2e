"""Deployment files, checked offline: compose parses, every file it names exists,
Prometheus accepts its config. (No Docker engine runs here, so images are not built.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_parses_and_names_existing_files() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"gateway", "node-a", "node-b", "postgres", "prometheus", "grafana", "mailpit",
            "replay"} <= set(services)  # fmt: skip
    assert services["replay"]["profiles"] == ["replay"]
    assert (ROOT / services["node-a"]["build"] / "Dockerfile").is_file()
    for name in ("node-a", "node-b"):  # one PostgreSQL, a name each, one link key
        env = services[name]["environment"]
        assert env["MAILMOAT_STORE__URL"].startswith("postgresql+psycopg://")
        assert env["MAILMOAT_STORE__NODE"] == name
    assert (
        services["node-a"]["environment"]["MAILMOAT_QUARANTINE__LINK_SECRET"]
        == (services["node-b"]["environment"]["MAILMOAT_QUARANTINE__LINK_SECRET"])
    )
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{source} named in docker-compose.yml is missing"
        for other in service.get("depends_on", []):
            assert other in services
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])
             if not v.startswith("./")}  # fmt: skip
    assert named <= set(compose["volumes"])


def test_dockerfile_copies_existing_paths() -> None:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_prometheus_config_passes_promtool(tmp_path: Path, promtool: str) -> None:
    config = yaml.safe_load((ROOT / "deploy/compose/prometheus.yml").read_text())
    # Inside the container the rules are mounted at /etc/prometheus; point at the repo's copy.
    shutil.copy(ROOT / "deploy/prometheus/rules.yml", tmp_path / "rules.yml")
    config["rule_files"] = [str(tmp_path / "rules.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    done = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
