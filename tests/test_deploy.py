"""Deployment files, checked offline: compose parses, every file it names exists, Prometheus,
Alertmanager and the blackbox exporter accept their configs, Grafana's provisioning points at
what compose mounts. (No Docker engine runs here, so images are not built.)"""

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
    assert {"alertmanager", "blackbox"} <= set(services)
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


def mounts(service: dict[str, list[str]]) -> dict[str, str]:
    """A compose service's bind mounts: container path -> repository path."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            found[target] = source.removeprefix("./")
    return found


def in_container(where: dict[str, str], path: str) -> Path | None:
    """The repository file a container path resolves to through ``where``'s mounts."""
    for target, source in where.items():
        if path == target or path.startswith(target.rstrip("/") + "/"):
            return ROOT / source / path.removeprefix(target).lstrip("/")
    return None


def test_grafana_provisioning_matches_the_compose_mounts() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = mounts(compose["services"]["grafana"])
    provisioning = in_container(grafana, "/etc/grafana/provisioning")
    assert provisioning is not None, "Grafana reads provisioning from /etc/grafana/provisioning"
    for provider in yaml.safe_load((provisioning / "dashboards/mailmoat.yml").read_text())[
        "providers"
    ]:
        folder = in_container(grafana, provider["options"]["path"])
        assert folder is not None, f"{provider['options']['path']} is not mounted"
        assert list(folder.glob("*.json")), f"no dashboards in {folder}"
    sources = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    for source in sources["datasources"]:
        # Inside the Grafana container 127.0.0.1 is Grafana: the URL must name a service.
        assert source["url"] == "http://prometheus:9090", source["url"]
        assert "prometheus" in compose["services"]


def test_prometheus_alerts_to_the_compose_alertmanager() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    config = yaml.safe_load((ROOT / "deploy/compose/prometheus.yml").read_text())
    [target] = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert target.split(":")[0] in compose["services"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    probe = jobs["mailmoat-smtp"]
    address = probe["relabel_configs"][-1]["replacement"]
    assert address.split(":")[0] in compose["services"]
    assert probe["static_configs"][0]["targets"] == ["gateway:2525"]


def test_alertmanager_config_passes_amtool(amtool: str) -> None:
    config = ROOT / "deploy/alertmanager/alertmanager.yml"
    done = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_blackbox_config_is_accepted(blackbox_exporter: str) -> None:
    config = ROOT / "deploy/blackbox/blackbox.yml"
    done = subprocess.run(
        [blackbox_exporter, "--config.check", f"--config.file={config}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerignore_keeps_the_image_to_the_product() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".venv", "data", ".git", "tests", "bench"):
        assert path in ignored
