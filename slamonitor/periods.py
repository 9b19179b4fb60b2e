"""Report months: a calendar month in a configured time zone, as a half-open UNIX-second range."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PERIOD = 300.0
"""Seconds in one latency period: SPEC 4 averages round trips per 5 minutes."""

_MONTH = re.compile(r"(\d{4})-(\d{2})")


def zone(name: str) -> ZoneInfo:
    """A time zone by IANA name; the error names the bad value."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


@dataclass(frozen=True, slots=True)
class Month:
    """One report month; ``start`` is inclusive and ``end`` exclusive (UNIX seconds)."""

    year: int
    month: int
    tz: str = "UTC"

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month must be 1-12, not {self.month}")
        zone(self.tz)

    @classmethod
    def parse(cls, text: str, tz: str = "UTC") -> Month:
        """``2026-11`` in ``tz``."""
        match = _MONTH.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"month must look like 2026-11, not {text!r}")
        return cls(int(match[1]), int(match[2]), tz)

    @classmethod
    def containing(cls, when: float, tz: str = "UTC") -> Month:
        local = datetime.fromtimestamp(when, zone(tz))
        return cls(local.year, local.month, tz)

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> float:
        return datetime(self.year, self.month, 1, tzinfo=zone(self.tz)).timestamp()

    @property
    def end(self) -> float:
        return self.next().start

    def next(self) -> Month:
        if self.month == 12:
            return Month(self.year + 1, 1, self.tz)
        return Month(self.year, self.month + 1, self.tz)

    def contains(self, when: float) -> bool:
        return self.start <= when < self.end
