"""Business hours: deadlines that only run while a support desk is open (weekly hours, holidays)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from slamonitor.periods import zone

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SEARCH_DAYS = 400
"""Days a deadline is looked for ahead; a calendar with no open day in a year is an error."""


class BusinessHours(BaseModel):
    """When a desk is open: ``hours`` maps a weekday to ``"08:00-20:00"`` in ``tz``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tz: str = Field("UTC", description="IANA time zone the hours are in")
    hours: dict[str, str] = Field(
        default_factory=lambda: dict.fromkeys(DAYS[:5], "09:00-17:00"),
        description="weekday (mon..sun) to opening hours HH:MM-HH:MM; missing days are closed",
    )
    holidays: tuple[date, ...] = Field((), description="dates the desk is closed all day")

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, str]) -> dict[str, str]:
        for day, span in value.items():
            if day not in DAYS:
                raise ValueError(f"unknown weekday {day!r}; expected one of {', '.join(DAYS)}")
            _span(span)
        return value

    def _open_intervals(self, since: float) -> Iterator[tuple[float, float]]:
        """Open intervals (UNIX seconds) from the local day containing ``since`` onwards."""
        tz = zone(self.tz)
        day = datetime.fromtimestamp(since, tz).date()
        for offset in range(_SEARCH_DAYS):
            current = day + timedelta(days=offset)
            span = self.hours.get(DAYS[current.weekday()])
            if span is None or current in self.holidays:
                continue
            opens, closes = _span(span)
            yield (
                datetime.combine(current, opens, tz).timestamp(),
                datetime.combine(current, closes, tz).timestamp(),
            )

    def is_open(self, when: float) -> bool:
        start, end = next(self._open_intervals(when), (0.0, 0.0))
        return start <= when < end

    def add(self, start: float, seconds: float) -> float:
        """The moment ``seconds`` of open time have passed since ``start``."""
        left = seconds
        for opens, closes in self._open_intervals(start):
            begin = max(opens, start)
            if begin >= closes:
                continue
            if begin + left <= closes:
                return begin + left
            left -= closes - begin
        raise ValueError(f"business hours {self.hours} never reach {seconds} s of open time")

    def end_of_day(self, start: float) -> float:
        """Close of the business day ``start`` falls in, or of the next one if it is closed."""
        for _, closes in self._open_intervals(start):
            if closes > start:
                return closes
        raise ValueError(f"business hours {self.hours} have no open day ahead")


def _span(text: str) -> tuple[time, time]:
    try:
        first, second = text.split("-")
        opens, closes = time.fromisoformat(first.strip()), time.fromisoformat(second.strip())
    except ValueError:
        raise ValueError(f"opening hours must look like 08:00-20:00, not {text!r}") from None
    if closes <= opens:
        raise ValueError(f"opening hours {text!r} close before they open")
    return opens, closes
