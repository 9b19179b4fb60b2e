"""Gateway config: the shipped example loads, env overrides apply, errors name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import EXAMPLE, ConfigError, apply_env, load_config


def test_example_config_is_the_default() -> None:
    config = load_config(None, environ={})
    assert config.smtp.port == 2525 and config.http.port == 8025
    assert config.domains["example.test"].route == ("127.0.0.1", 2526)
    assert config.filter.policy == EXAMPLE.parent / "policy.toml"


def test_environment_overrides_nested_keys() -> None:
    env = {
        "MAILMOAT_SMTP__PORT": "2600",
        "MAILMOAT_SMTP__HOSTNAME": "mx.example.net",
        "MAILMOAT_DELIVERY__RETRY_BASE": "1.5",
        "MAILMOAT_DOMAINS__EXAMPLE.TEST__DOWNSTREAM": "10.0.0.5:25",
        "OTHER": "ignored",
    }
    config = load_config(None, environ=env)
    assert (config.smtp.port, config.smtp.hostname) == (2600, "mx.example.net")
    assert config.delivery.retry_base == 1.5
    assert config.domains["example.test"].route == ("10.0.0.5", 25)


def test_apply_env_does_not_touch_the_input() -> None:
    data = {"smtp": {"port": 1}}
    assert apply_env(data, {"MAILMOAT_SMTP__PORT": "2"}) == {"smtp": {"port": 2}}
    assert data == {"smtp": {"port": 1}}


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("[smtp]\nport = 70000\n", "smtp.port", "less than or equal to 65535"),
        ('[domains."a.test"]\ndownstream = "nohost"\n', "domains.a.test.downstream", "host:port"),
        ("[smtpp]\nport = 1\n", "smtpp", "Extra inputs"),
        ("[http]\nmetrics_auth = { username = 'p' }\n", "http.metrics_auth", "both username"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, key: str, message: str) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert f"{path}: {key}:" in str(err.value) and message in str(err.value)


def test_bad_env_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"smtp\.port"):
        load_config(None, environ={"MAILMOAT_SMTP__PORT": "many"})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml", environ={})


def test_absolute_paths_stay_absolute(tmp_path: Path) -> None:
    policy = tmp_path / "elsewhere" / "policy.toml"
    path = tmp_path / "gw.toml"
    path.write_text(f'[filter]\npolicy = "{policy}"\nmodel = "rel/model.npz"\n')
    config = load_config(path, environ={})
    assert config.filter.policy == policy
    assert config.filter.model == tmp_path / "rel" / "model.npz"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[store]\nurl = "mysql://db/mail"\n',
            "store.url: Value error, must start with postgresql",
        ),
        ('[store]\nurl = "postgresql://db/mail"\n', "quarantine.link_secret is required"),
        ("[store]\nlease_seconds = 0\n", "store.lease_seconds: Input should be greater than"),
    ],
)
def test_store_url_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert message in str(err.value)


def test_a_store_url_replaces_the_sqlite_path(tmp_path: Path) -> None:
    env = {
        "MAILMOAT_STORE__URL": "postgresql+psycopg://mailmoat@db/mailmoat",
        "MAILMOAT_QUARANTINE__LINK_SECRET": "k" * 32,
    }
    assert load_config(None, environ=env).store.location == env["MAILMOAT_STORE__URL"]
    assert load_config(None, environ={}).store.location == Path("data/mailmoat.db")
