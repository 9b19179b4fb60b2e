"""Gateway configuration: one validated file (TOML or YAML) plus ``MAILMOAT_*`` overrides.

Environment overrides use ``__`` between keys, so ``MAILMOAT_SMTP__PORT=2600``
sets ``[smtp] port``; values are read as TOML scalars (``2600``, ``true``,
``"text"``) and fall back to plain strings. Errors name the file and the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from filters.policy import PolicyError, beside, format_validation_errors, read_document
from loadtest.relaytest_api import RelayTestSettings
from quarantine.config import QuarantineConfig
from service.http import MetricsAuth
from service.virus_alerts import AlertSettings, AlertTo
from slamonitor.config import SlaSettings

ENV_PREFIX = "MAILMOAT_"
_ADDRESS = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+")
EXAMPLE = Path(str(files("mailmoat_examples").joinpath("gateway.toml")))
"""The shipped example config (``examples/`` in the source tree, package data when installed)."""
DEFAULT_MODEL = Path("data/model.npz")
"""Where the shipped config's model lives: under the working directory, like its store."""


class ConfigError(ValueError):
    """The gateway config is missing or invalid; the message names the file and key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpConfig(_Section):
    host: str = Field("127.0.0.1", description="address the SMTP listener binds")
    port: int = Field(2525, ge=0, le=65535, description="SMTP port; 0 picks a free one")
    hostname: str = Field("mailmoat.localhost", description="name in the banner, EHLO and DSNs")
    max_message_size: int = Field(26_214_400, ge=1024, description="bytes; larger gets 552")
    max_recipients: int = Field(100, ge=1, description="RCPT TOs per message; more get 452")
    max_line_length: int = Field(1001, ge=80, description="octets per line incl. CRLF (RFC 5321)")
    max_commands: int = Field(
        100, ge=10, description="times one command may repeat in a session, 421 beyond"
    )
    max_messages_per_session: int = Field(
        10_000, ge=1, description="messages one connection may send; MAIL/RCPT/DATA scale with it"
    )
    timeout: float = Field(300.0, gt=0, description="seconds of client silence before 421")
    tls_cert: Path | None = Field(None, description="PEM certificate; enables STARTTLS")
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert")
    max_sessions: int = Field(1000, ge=1, description="open SMTP sessions; more get 421")
    max_sessions_per_client: int = Field(
        50, ge=1, description="open SMTP sessions from one client address; more get 421"
    )
    allow_routing_localparts: bool = Field(
        False, description="accept local parts with %, ! or a quoted @ (source routing)"
    )


class HttpConfig(_Section):
    host: str = Field("127.0.0.1", description="address the HTTP server binds")
    port: int = Field(8025, ge=0, le=65535, description="HTTP port; 0 picks a free one")
    metrics_auth: MetricsAuth | None = Field(
        None, description="protect /metrics: {username, password} or {bearer_token}"
    )


class StoreConfig(_Section):
    path: Path = Field(Path("data/mailmoat.db"), description="SQLite database file")
    url: str | None = Field(
        None, description="PostgreSQL URL (postgresql+psycopg://...); set: used instead of path"
    )
    node: str | None = Field(None, description="this node's name in leases; unset: host name")
    lease_seconds: float = Field(
        60.0, ge=1, description="work of a node silent this long is taken over by the others"
    )

    @field_validator("url")
    @classmethod
    def _postgres(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgresql+psycopg://")):
            raise ValueError("must start with postgresql+psycopg:// (or postgresql://)")
        return value

    @property
    def location(self) -> Path | str:
        """What ``store.Store`` opens: the URL when set, else the SQLite file."""
        return self.path if self.url is None else self.url


class DeliveryConfig(_Section):
    retry_base: float = Field(60.0, gt=0, description="first retry delay, seconds")
    retry_cap: float = Field(3600.0, gt=0, description="longest retry delay, seconds")
    max_age: float = Field(7 * 86400.0, gt=0, description="give up and delete after, seconds")
    timeout: float = Field(60.0, gt=0, description="seconds per network step of a delivery")
    concurrency: int = Field(20, ge=1, description="deliveries in flight at once")
    mx_port: int = Field(
        25, ge=1, le=65535, description="port of MX hosts (outbound mail); 25 but in tests"
    )


class SubmissionConfig(_Section):
    """The port-587 style listener where customers' own users send mail out (issue 15)."""

    port: int | None = Field(
        None, ge=0, le=65535, description="submission port (587); unset: no listener; 0: a free one"
    )
    host: str = Field("127.0.0.1", description="address the submission listener binds")
    tls_cert: Path | None = Field(None, description="PEM certificate; unset: smtp.tls_cert")
    tls_key: Path | None = Field(None, description="PEM private key; unset: smtp.tls_key")
    messages_per_minute: int = Field(
        30, ge=1, description="messages one user may send a minute; more get 450 4.7.1"
    )
    recipients_per_hour: int = Field(
        500, ge=1, description="recipients one user may address an hour; more get 450 4.7.1"
    )
    max_auth_failures: int = Field(
        3, ge=1, description="failed AUTH attempts one session gets before it is closed with 421"
    )

    @property
    def enabled(self) -> bool:
        return self.port is not None


class FilterConfig(_Section):
    policy: Path | None = Field(None, description="policy file; none: built-in defaults")
    model: Path | None = Field(None, description="token model; overrides the policy's model")
    processes: int = Field(1, ge=0, description="filter processes; 0 filters in a thread")
    # Messages in flight, not CPUs: each also waits on the store's writer thread (its outcome)
    # and on the pool's IPC, so with 8 the filter process idled and a closed-loop replay ran
    # at 44 msg/s end to end; with 32, 142 msg/s on the same machine (bench/e2e.py).
    concurrency: int = Field(32, ge=1, description="messages filtered at once")
    max_attempts: int = Field(
        3, ge=1, description="failed filterings before a message is held as unscanned"
    )
    retry_delay: float = Field(1.0, ge=0, description="seconds before filtering again, doubling")
    quarantine_full_retry: float = Field(
        60.0, gt=0, description="seconds before a virus the full quarantine refused is tried again"
    )
    hard_timeout: float = Field(
        300.0, gt=0, description="seconds one filtering may take before its process is killed"
    )
    backlog_messages: int = Field(
        10_000, ge=1, description="messages accepted but not filtered; then 451 4.3.2"
    )
    backlog_bytes: int = Field(
        512 * 1024 * 1024, ge=1024, description="bytes accepted but not filtered; then 451 4.3.2"
    )


class LearningConfig(_Section):
    """``[learning]``: how releases and confirmed misses train the running model."""

    enabled: bool = Field(True, description="learn from releases and confirmed misses")
    interval: float = Field(5.0, gt=0, description="seconds between looks for new labels")
    rate: float = Field(
        1.0, gt=0, le=10, description="largest move of any message's model logit per label"
    )
    per_sender_per_day: int = Field(3, ge=0, description="updates per sender domain per day")
    per_domain_per_day: int = Field(10, ge=0, description="updates per customer domain per day")


class DomainConfig(_Section):
    downstream: str | None = Field(
        None, description="host:port of the customer's server; MX if unset"
    )
    contact: str | None = Field(
        None, description="customer address for queue alerts and virus outbreak notices"
    )
    virus_alerts: AlertTo = Field(
        AlertTo.NONE, description="who is told of a stopped virus: none, sender, recipient, both"
    )
    virus_admin: str | None = Field(None, description="administrator told of every virus too")

    @field_validator("virus_admin")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not _ADDRESS.fullmatch(value):
            raise ValueError(f"{value!r} is not a mail address (local@domain)")
        return value

    @property
    def alerts(self) -> AlertSettings:
        return AlertSettings(self.virus_alerts, self.virus_admin)

    @field_validator("downstream")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} is not host:port")
        return value

    @property
    def route(self) -> tuple[str, int] | None:
        if self.downstream is None:
            return None
        host, _, port = self.downstream.rpartition(":")
        return host, int(port)


class GatewayConfig(_Section):
    """The whole gateway file; ``domains`` are the registered (accepted) domains."""

    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    learning: LearningConfig = Field(default_factory=LearningConfig)
    quarantine: QuarantineConfig = Field(default_factory=QuarantineConfig)
    sla: SlaSettings = Field(default_factory=SlaSettings)
    relaytest: RelayTestSettings = Field(default_factory=RelayTestSettings)
    submission: SubmissionConfig = Field(default_factory=SubmissionConfig)
    domains: dict[str, DomainConfig] = Field(default_factory=dict)

    @field_validator("domains")
    @classmethod
    def _lower(cls, value: dict[str, DomainConfig]) -> dict[str, DomainConfig]:
        return {k.lower().strip("."): v for k, v in value.items()}

    @model_validator(mode="after")
    def _backlog_holds_a_message(self) -> GatewayConfig:
        if self.filter.backlog_bytes < self.smtp.max_message_size:
            raise ValueError("filter.backlog_bytes must be at least smtp.max_message_size")
        return self

    @model_validator(mode="after")
    def _shared_link_key(self) -> GatewayConfig:
        # A key generated beside one node's files would not open links another node signed.
        if self.store.url is not None and self.quarantine.link_secret is None:
            raise ValueError(
                "quarantine.link_secret is required with store.url: every node signs digest"
                " links with it"
            )
        return self

    @model_validator(mode="after")
    def _submission_has_tls(self) -> GatewayConfig:
        # AUTH is offered only after STARTTLS: without a certificate no one could ever send.
        if self.submission.enabled and self.submission_tls()[0] is None:
            raise ValueError("submission.port needs submission.tls_cert (or smtp.tls_cert)")
        return self

    def submission_tls(self) -> tuple[Path | None, Path | None]:
        """The submission listener's certificate and key: its own, else the SMTP listener's."""
        sub = self.submission
        if sub.tls_cert is not None:
            return sub.tls_cert, sub.tls_key
        return self.smtp.tls_cert, self.smtp.tls_key

    def routes(self) -> dict[str, tuple[str, int]]:
        return {d: c.route for d, c in self.domains.items() if c.route is not None}

    def resolve_paths(self, base: Path) -> GatewayConfig:
        """Relative paths in the file are relative to the file's folder."""
        smtp, filters, sub = self.smtp, self.filter, self.submission
        return self.model_copy(
            update={
                "submission": sub.model_copy(
                    update={
                        "tls_cert": beside(base, sub.tls_cert),
                        "tls_key": beside(base, sub.tls_key),
                    }
                ),
                "smtp": smtp.model_copy(
                    update={
                        "tls_cert": beside(base, smtp.tls_cert),
                        "tls_key": beside(base, smtp.tls_key),
                    }
                ),
                "filter": filters.model_copy(
                    update={
                        "policy": beside(base, filters.policy),
                        "model": beside(base, filters.model),
                    }
                ),
            }
        )


def _scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``data`` with every ``MAILMOAT_A__B=value`` set at key ``a.b``."""
    merged: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        keys = name.removeprefix(ENV_PREFIX).lower().split("__")
        node = merged
        for key in keys[:-1]:
            child = node.get(key)
            node[key] = child = dict(child) if isinstance(child, dict) else {}
            node = child
        node[keys[-1]] = _scalar(value)
    return merged


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read ``path`` (the shipped example when None), apply env overrides, validate."""
    path = path or EXAMPLE
    try:
        data = read_document(path)
    except PolicyError as exc:
        raise ConfigError(str(exc)) from None
    data = apply_env(data, os.environ if environ is None else environ)
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_errors(str(path), exc)) from None
    config = config.resolve_paths(path.parent)
    if path == EXAMPLE and config.filter.model is None:
        # The example's folder may be an installed package: data stays in the working directory.
        config = config.model_copy(
            update={"filter": config.filter.model_copy(update={"model": DEFAULT_MODEL})}
        )
    return config
