"""Helpdesk targets: priority tables (Telstra, Mithi S1-S4, Message Partners), business hours."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from slamonitor.business import BusinessHours
from slamonitor.config import SlaSettings
from slamonitor.helpdesk import TABLES, TELSTRA, TicketTimes, measure

HOUR = 3600.0
UTC = ZoneInfo("UTC")


def at(text: str, tz: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def test_telstra_shares_per_priority() -> None:
    opened = at("2026-11-02T10:00")
    # Critical: 19 answered within 2 h and 1 late -> 95%, met. Major: 4 of 5 within 4 h -> 80%.
    tickets = [TicketTimes("Critical", opened, opened + HOUR) for _ in range(19)]
    tickets.append(TicketTimes("Critical", opened, opened + 2 * HOUR + 1))
    tickets += [TicketTimes("Major", opened, opened + 4 * HOUR) for _ in range(4)]
    tickets.append(TicketTimes("Major", opened, None))  # unanswered and overdue at "now"
    tickets.append(TicketTimes("Minor", opened, None))  # unanswered but not yet due
    result = measure(TELSTRA, tickets, now=opened + 5 * HOUR)
    assert result["Critical"] == {
        "target": 0.95,
        "measured": 0.95,
        "met": True,
        "within": 19,
        "late": 1,
        "pending": 0,
    }
    major = result["Major"]
    assert isinstance(major, dict) and major["measured"] == 0.8 and major["met"] is False
    assert result["Minor"] == {
        "target": 0.75,
        "measured": None,
        "met": None,
        "within": 0,
        "late": 0,
        "pending": 1,
    }


def test_mithi_s1_counts_working_hours_only() -> None:
    table = TABLES["mithi-assurance"]  # S1: 4 working hours; Mon-Fri 08-20, Sat 09-18 (IST)
    friday_evening = at("2026-11-06T18:00", "Asia/Kolkata")
    # 2 h left on Friday, the other 2 h from Saturday 09:00.
    assert table.deadline("S1", friday_evening) == at("2026-11-07T11:00", "Asia/Kolkata")
    saturday_late = at("2026-11-07T17:00", "Asia/Kolkata")  # Sunday is closed
    assert table.deadline("S1", saturday_late) == at("2026-11-09T11:00", "Asia/Kolkata")


def test_mithi_same_working_day() -> None:
    table = TABLES["mithi-privilege"]
    assert table.deadline("S3", at("2026-11-04T10:00", "Asia/Kolkata")) == at(
        "2026-11-04T20:00", "Asia/Kolkata"
    )
    # Opened at night: due at the close of the next working day.
    assert table.deadline("S4", at("2026-11-04T22:00", "Asia/Kolkata")) == at(
        "2026-11-05T20:00", "Asia/Kolkata"
    )


def test_message_partners_business_and_other_times() -> None:
    table = TABLES["messagepartners-standard"]  # 2 h in business hours (08-18 GMT-5), else 4 h
    inside = at("2026-11-04T09:00", "Etc/GMT+5")
    outside = at("2026-11-04T19:00", "Etc/GMT+5")
    assert table.deadline("S2", inside) == inside + 2 * HOUR
    assert table.deadline("S2", outside) == outside + 4 * HOUR


def test_holidays_close_the_desk() -> None:
    desk = BusinessHours(
        tz="UTC",
        hours={"mon": "09:00-17:00", "tue": "09:00-17:00"},
        holidays=(datetime(2026, 11, 2).date(),),
    )
    # Monday 2026-11-02 is a holiday: 8 business hours run all Tuesday.
    assert desk.add(at("2026-11-02T09:00"), 8 * HOUR) == at("2026-11-03T17:00")


def test_custom_table_from_config() -> None:
    settings = SlaSettings.model_validate(
        {
            "helpdesk_table": "ours",
            "helpdesk_tables": [
                {
                    "name": "ours",
                    "priorities": [
                        {"name": "P1", "target": 0.9, "response": {"kind": "elapsed", "hours": 1}}
                    ],
                }
            ],
        }
    )
    assert settings.table().deadline("p1", 0.0) == HOUR


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"helpdesk_table": "nope"}, "helpdesk_table 'nope' is not one of"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"virus_release_hours": {"hours": {"mon": "18:00-09:00"}}}, "close before they open"),
        (
            {
                "helpdesk_tables": [
                    {
                        "name": "x",
                        "priorities": [
                            {
                                "name": "S1",
                                "target": 1,
                                "response": {"kind": "business", "hours": 1},
                            }
                        ],
                    }
                ]
            },
            "need business_hours",
        ),
    ],
)
def test_config_errors_name_the_problem(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SlaSettings.model_validate(data)
