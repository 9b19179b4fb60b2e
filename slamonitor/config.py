"""The SLA monitor's settings: one typed section, every field with a default and a description."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from slamonitor.business import BusinessHours
from slamonitor.helpdesk import TABLES, HelpdeskTable
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
    live_cache_seconds: float = Field(
        300.0, gt=0, description="longest time /metrics reuses month-to-date figures"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @model_validator(mode="after")
    def _table_exists(self) -> SlaSettings:
        self.table()
        return self

    def table(self) -> HelpdeskTable:
        tables = {**TABLES, **{t.name: t for t in self.helpdesk_tables}}
        if self.helpdesk_table not in tables:
            raise ValueError(
                f"helpdesk_table {self.helpdesk_table!r} is not one of {', '.join(sorted(tables))}"
            )
        return tables[self.helpdesk_table]

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
