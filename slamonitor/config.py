"""The SLA monitor's settings: one typed section, every field with a default and a description."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from slamonitor.business import BusinessHours
from slamonitor.helpdesk import TABLES, HelpdeskTable
from slamonitor.mailings import ReportSchedule
from slamonitor.periods import zone


class SlaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = Field("UTC", description="IANA zone whose calendar months are reported")
    helpdesk_table: str = Field("telstra", description="priority table tickets are held to")
    helpdesk_tables: tuple[HelpdeskTable, ...] = Field(
        (), description="extra priority tables, selectable by name like the built-in ones"
    )
    virus_release_hours: BusinessHours = Field(
        default_factory=BusinessHours,
        description="desk hours the 8-business-hour virus release target counts in",
    )
    helpdesk_plans: dict[str, str] = Field(
        default_factory=dict,
        description="domain to the helpdesk table its support plan holds tickets to",
    )
    registered_users: dict[str, int] = Field(
        default_factory=dict,
        description="domain to the users the customer registered (billed on); usage is checked",
    )
    reports: ReportSchedule = Field(
        default_factory=ReportSchedule, description="which reports are mailed to whom"
    )
    live_cache_seconds: float = Field(
        300.0, gt=0, description="longest time /metrics reuses month-to-date figures"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("helpdesk_plans", "registered_users")
    @classmethod
    def _lower_domains(cls, value: dict[str, object]) -> dict[str, object]:
        return {k.lower().strip("."): v for k, v in value.items()}

    @field_validator("registered_users")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for domain, users in value.items():
            if users < 1:
                raise ValueError(f"{domain}: registered users must be at least 1, not {users}")
        return value

    @model_validator(mode="after")
    def _tables_exist(self) -> SlaSettings:
        self.table()
        for domain, name in self.helpdesk_plans.items():
            self._named(name, f"helpdesk_plans.{domain}")
        return self

    def _named(self, name: str, key: str) -> HelpdeskTable:
        tables = {**TABLES, **{t.name: t for t in self.helpdesk_tables}}
        if name not in tables:
            raise ValueError(f"{key} {name!r} is not one of {', '.join(sorted(tables))}")
        return tables[name]

    def table(self, domain: str | None = None) -> HelpdeskTable:
        """The table tickets of ``domain`` are held to: its plan's, else the default."""
        plan = self.helpdesk_plans.get(domain.lower()) if domain is not None else None
        if plan is not None:
            return self._named(plan, f"helpdesk_plans.{domain}")
        return self._named(self.helpdesk_table, "helpdesk_table")

    @classmethod
    def load(cls, path: Path) -> SlaSettings:
        """Settings from the ``[sla]`` table of a TOML file; errors name the file and key."""
        try:
            data = tomllib.loads(path.read_text()).get("sla", {})
            return cls.model_validate(data)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: {exc}") from None
        except ValidationError as exc:
            where = "; ".join(
                f"sla.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(f"{path}: {where}") from None
