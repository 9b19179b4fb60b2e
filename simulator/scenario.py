"""The scenario file: a month of hosted filtering, typed and validated; errors name file and key.

Times in the file are local to the scenario's time zone (``2026-10-14T09:00``);
durations are seconds or ``90s``, ``30m``, ``6h``, ``2d``. Windows that cannot
both hold (two outages of one domain at once, two outbreaks with different
virus ratios) are refused, as are events outside the month.
"""

from __future__ import annotations

import calendar
import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from simulator.errors import ScenarioError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
OFFICE_HOURS = (
    (0.2,) * 7
    + (0.6, 1.4, 1.8, 1.8, 1.6, 1.3, 1.6, 1.7, 1.6, 1.3, 0.9, 0.8)
    + (0.6, 0.5, 0.4, 0.3, 0.2)
)
"""Hour-of-day weights: quiet nights, a morning peak; 24 values."""
WORKWEEK = (1.2, 1.2, 1.15, 1.15, 1.1, 0.6, 0.5)
"""Day-of-week weights, Monday first."""


def seconds(value: float | str) -> float:
    """A duration in seconds from a number or ``90s``/``30m``/``6h``/``2d``."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"duration must look like 90s, 30m, 6h or 2d, not {value!r}")
    return float(match[1]) * _UNITS[match[2]]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Duration = Annotated[float | str, Field(description="seconds, or 90s / 30m / 6h / 2d")]


class _Window(_Model):
    start: datetime = Field(description="local time in the scenario's time zone")
    duration: Duration

    @property
    def seconds(self) -> float:
        return seconds(self.duration)

    @field_validator("duration")
    @classmethod
    def _positive(cls, value: float | str) -> float | str:
        if seconds(value) <= 0:
            raise ValueError("duration must be positive")
        return value


class Outbreak(_Window):
    kind: Literal["outbreak"]
    virus_ratio: float = Field(gt=0, le=1, description="share of all mail that is a virus")


class DownstreamOutage(_Window):
    kind: Literal["downstream_outage"]
    domain: str
    mode: Literal["refused", "4xx"] = Field("refused", description="connection refused or 4xx")


class ConfigFault(_Window):
    """The customer's own server misconfigured: it answers our gateway with 4xx (SPEC 4
    exempts latency meanwhile)."""

    kind: Literal["config_fault"]
    domain: str


class GatewayOutage(_Window):
    kind: Literal["gateway_outage"]


class DnsblTimeout(_Window):
    kind: Literal["dnsbl_timeout"]
    timeout: float = Field(5.0, gt=0, description="seconds each lookup waits before giving up")


class Maintenance(_Window):
    kind: Literal["maintenance"]
    port_closed: bool = Field(True, description="the gateway takes no mail meanwhile")


class Dos(_Window):
    kind: Literal["dos"]
    factor: float = Field(gt=1, description="arrival rate multiplier")
    declared: bool = Field(True, description="the operator declares it (latency excluded)")


class QuarantineFull(_Window):
    kind: Literal["quarantine_full"]


class Suspension(_Window):
    kind: Literal["suspension"]
    domain: str


class Campaign(_Window):
    kind: Literal["campaign"]
    domain: str
    messages: int = Field(gt=0, description="bulk messages in the campaign")
    recipients: int = Field(50, gt=0, description="recipients of each message")


Event = Annotated[
    Outbreak
    | DownstreamOutage
    | ConfigFault
    | GatewayOutage
    | DnsblTimeout
    | Maintenance
    | Dos
    | QuarantineFull
    | Suspension
    | Campaign,
    Field(discriminator="kind"),
]
EXCLUSIVE = {
    "outbreak": "two outbreaks cannot both set the virus ratio",
    "downstream_outage": "one domain's server cannot have two outages at once",
    "config_fault": "one domain's server cannot be misconfigured twice at once",
    "gateway_outage": "the gateway cannot go down twice at once",
    "dos": "two denial-of-service factors cannot both hold",
    "maintenance": "maintenance windows overlap",
    "suspension": "a domain cannot be suspended twice at once",
}


class Domain(_Model):
    name: str = Field(pattern=r"^[a-z0-9.-]+\.[a-z]+$", description="customer domain")
    per_day: float = Field(gt=0, description="messages on an average day")
    started: datetime | None = Field(None, description="service start (first 30 days exempt)")
    delivery_seconds: float | None = Field(None, gt=0, description="mean time per attempt")


class Traffic(_Model):
    corpus: str = Field("generated", description="labelled corpus dir, or generated sample")
    corpus_size: int = Field(300, gt=0, le=100_000, description="messages of a generated sample")
    policy: str | None = Field(None, description="policy file; default examples/policy.toml")
    model: str = Field("train", description="token model path, none, or train (on half the corpus)")
    spam_share: float = Field(0.4, ge=0, le=1, description="share of spam in normal traffic")
    virus_share: float = Field(0.0005, ge=0, le=1, description="share of viruses outside outbreaks")
    hour_profile: tuple[float, ...] = Field(OFFICE_HOURS, min_length=24, max_length=24)
    weekday_profile: tuple[float, ...] = Field(WORKWEEK, min_length=7, max_length=7)
    sender_retry: Duration = Field("15m", description="senders come back within this after 4xx")


class Capacity(_Model):
    accept_rate: float = Field(400.0, gt=0, description="messages per second port 25 accepts")
    filter_processes: int = Field(2, gt=0, description="filter workers")
    filter_seconds: float | None = Field(None, gt=0, description="mean; absent: measured")
    delivery_concurrency: int = Field(4, gt=0, description="connections per domain")
    delivery_seconds: float = Field(0.5, gt=0, description="mean time per delivery attempt")
    retry_base: float = Field(60.0, gt=0, description="first retry delay, seconds")
    retry_cap: float = Field(3600.0, gt=0, description="longest retry delay, seconds")
    max_age: float = Field(7 * 86400.0, gt=0, description="give up after, seconds")


class Priority(_Model):
    name: str = Field(description="Critical, Major, Minor or Information (Telstra table)")
    tickets: int = Field(ge=0, description="tickets opened in the month")
    median_hours: float = Field(gt=0, description="median first-response time")
    spread: float = Field(0.5, ge=0, description="log-normal sigma of response times")


class Helpdesk(_Model):
    priorities: tuple[Priority, ...] = ()


class Claims(_Model):
    fp_claim_share: float = Field(1.0, ge=0, le=1, description="wrongly blocked ham claimed")
    fp_reject_share: float = Field(0.0, ge=0, le=1, description="claims the operator rejects")
    fn_report_share: float = Field(0.02, ge=0, le=1, description="delivered spam reported")
    fn_reject_share: float = Field(0.0, ge=0, le=1, description="reports the operator rejects")


class Scenario(_Model):
    name: str
    description: str = ""
    month: str = Field(pattern=r"^\d{4}-\d{2}$", description="calendar month, e.g. 2026-10")
    timezone: str = "UTC"
    seed: int = 1
    messages: int | None = Field(None, gt=0, description="total; scales every domain's volume")
    traffic: Traffic = Traffic()
    capacity: Capacity = Capacity()
    domains: tuple[Domain, ...] = Field(min_length=1)
    events: tuple[Event, ...] = ()
    helpdesk: Helpdesk = Helpdesk()
    claims: Claims = Claims()

    @field_validator("month")
    @classmethod
    def _month_exists(cls, value: str) -> str:
        if not 1 <= int(value[5:]) <= 12:
            raise ValueError(f"{value} is not a month (01-12)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        names = [d.name for d in self.domains]
        if len(set(names)) != len(names):
            raise ValueError(f"domains: a name appears twice in {names}")
        first, last = self.bounds
        for i, e in enumerate(self.events):
            domain = getattr(e, "domain", None)
            if domain is not None and domain not in names:
                raise ValueError(f"events.{i}.domain: {domain!r} is not one of the domains")
            start = self.local(e.start)
            if not first <= start < last:
                raise ValueError(f"events.{i}.start: {e.start} is outside {self.month}")
        for i, a in enumerate(self.events):
            for j in range(i):
                b = self.events[j]
                if a.kind != b.kind or a.kind not in EXCLUSIVE:
                    continue
                if getattr(a, "domain", None) != getattr(b, "domain", None):
                    continue
                sa, sb = self.local(a.start), self.local(b.start)
                if sa < sb + b.seconds and sb < sa + a.seconds:
                    raise ValueError(f"events.{i} overlaps events.{j}: {EXCLUSIVE[a.kind]}")
        return self

    def local(self, when: datetime) -> float:
        """UNIX seconds of a scenario time (naive: in the scenario's zone)."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=ZoneInfo(self.timezone))
        return when.timestamp()

    @property
    def bounds(self) -> tuple[float, float]:
        """The month as a half-open UNIX-second range in the scenario's zone."""
        year, month = int(self.month[:4]), int(self.month[5:])
        zone = ZoneInfo(self.timezone)
        start = datetime(year, month, 1, tzinfo=zone)
        days = calendar.monthrange(year, month)[1]
        end = (start.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=zone)
        return start.timestamp(), end.timestamp()


def load_scenario(path: Path, messages: int | None = None) -> Scenario:
    """Read and validate a scenario; ``messages`` overrides the file's total volume."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not TOML: {exc}") from None
    if messages is not None:
        data["messages"] = messages
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        where = "; ".join(_describe(e) for e in exc.errors())
        raise ScenarioError(f"{path}: {where}") from None


def _describe(error: object) -> str:
    assert isinstance(error, dict)
    loc = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{loc}: {message}" if loc else message
