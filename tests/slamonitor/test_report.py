"""``mailmoat sla report``: JSON and self-contained HTML; migration 0002 up and down."""

from __future__ import annotations

import argparse
import base64
import json
import re
from datetime import date
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from matplotlib.dates import num2date
from matplotlib.figure import Figure
from sqlalchemy import Engine, inspect, select

from slamonitor.cli import add_commands, write_report
from slamonitor.config import SlaSettings
from slamonitor.periods import Month
from slamonitor.report import build
from slamonitor.report_html import render, seconds, share
from slamonitor.report_plots import _month_axis
from store.sla_tables import queue_samples, services, tickets
from store.store import MIGRATIONS
from tests.slamonitor.conftest import NOV, event, insert


def _no_config(config: Path | None) -> Path:
    raise AssertionError(f"the tests name the store with --db, not a config ({config})")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="mailmoat")
    add_commands(root.add_subparsers(dest="command", required=True), store_path=_no_config)
    return root


def test_report_command_writes_json_and_html(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    insert(engine, [event(f"m{i}", NOV + 60 * i, 30.0 + i, domain="acme.test") for i in range(50)])
    insert(engine, [event("o", NOV, 500.0, domain="other.test")])
    with engine.begin() as conn:
        conn.execute(
            queue_samples.insert(),
            [{"at": NOV + 30 * i, "domain": "acme.test", "length": i} for i in range(10)],
        )
        conn.execute(
            tickets.insert().values(
                domain="acme.test",
                priority="Critical",
                subject="down",
                opened_by="c",
                opened_at=NOV,
                first_response_at=NOV + 60,
            )
        )
    db = Path(engine.url.database or "")
    out_json, out_html = tmp_path / "out" / "sla.json", tmp_path / "out" / "sla.html"
    args = parser().parse_args(
        [
            "sla",
            "report",
            "--month",
            "2026-11",
            "--domain",
            "ACME.test",
            "--db",
            str(db),
            "--json",
            str(out_json),
            "--html",
            str(out_html),
        ]
    )
    assert args.func(args) == 0
    assert "latency: measured 1.0" in capsys.readouterr().out
    data = json.loads(out_json.read_text())
    assert data["domain"] == "acme.test" and data["month"] == "2026-11"
    assert data["levels"]["latency"]["delivered"] == 50
    assert data["levels"]["helpdesk"]["priorities"]["Critical"]["within"] == 1
    page = out_html.read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from elsewhere
    assert "acme.test" in page and 'class="missed"' not in page
    # Readable: shares as percentages, no None, no raw JSON, durations with units.
    assert "None" not in page and "{" not in page.split("</style>")[1]
    assert "<td>95%</td>" in page and "0.0004%" in page
    assert "50 of 50 delivered within 2 min" in page


def test_numbers_are_written_for_people() -> None:
    assert share(4e-06) == "0.0004%"
    assert share(0.000157952930026852) == "0.016%"
    assert (share(0.95), share(0.999), share(1.0), share(0.0)) == ("95%", "99.9%", "100%", "0%")
    assert share(None) == "not measured"
    assert (seconds(0.35), seconds(4.2), seconds(210.0), seconds(None)) == (
        "350 ms", "4.2 s", "3.5 min", "-",
    )  # fmt: skip


def test_an_empty_month_renders_without_plots_spanning_years(engine: Engine) -> None:
    report = build(engine, Month(2026, 11), SlaSettings(), now=NOV + 86400)
    page = render(report)
    assert "No exclusions this month." in page and "No alerts this month." in page
    assert "None" not in page
    assert '<span class="none">nothing to notify</span>' in page  # virus: nothing measured
    axes = Figure().add_subplot()
    _month_axis(axes, report)  # an empty plot keeps the month, not 2025 to 2029
    low, high = (num2date(x).date() for x in axes.get_xlim())
    assert (low, high) == (date(2026, 11, 1), date(2026, 12, 1))


def test_report_command_rejects_a_bad_month(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="month must look like 2026-11"):
        args = parser().parse_args(["sla", "report", "--month", "Nov", "--db", str(tmp_path / "x")])
        args.func(args)


def test_migration_0002_down_and_up(engine: Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
        assert not [t for t in inspect(conn).get_table_names() if t.startswith("sla_")]
        command.upgrade(config, "0002")
        assert "sla_claims" in inspect(conn).get_table_names()


def test_service_command_records_and_lists_start_dates(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "gateway.db")
    args = parser().parse_args(
        ["sla", "service", "ACME.test", "--start", "2026-11-01T09:00", "--db", db,
         "--timezone", "Europe/Paris"]
    )  # fmt: skip
    assert args.func(args) == 0
    with engine.connect() as conn:
        assert conn.execute(select(services.c.domain, services.c.started_at)).all() == [
            ("acme.test", NOV + 8 * 3600)
        ]
    out = capsys.readouterr().out
    assert "acme.test: started 2026-11-01T09:00:00+01:00" in out
    assert "measured from 2026-12-01T09:00:00+01:00" in out
    listing = parser().parse_args(["sla", "service", "--db", db])
    assert listing.func(listing) == 0
    assert "acme.test: started 2026-11-01T08:00:00+00:00" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["acme.test"], "give --start DATE"),
        (["acme.test", "--start", "1 Nov"], "--start must be a date like 2026-11-01"),
    ],
)
def test_service_command_errors(
    engine: Engine, tmp_path: Path, argv: list[str], error: str
) -> None:
    args = parser().parse_args(["sla", "service", *argv, "--db", str(tmp_path / "gateway.db")])
    with pytest.raises(ValueError, match=error):
        args.func(args)


def test_html_report_shows_usage_and_every_helpdesk_plan(engine: Engine, tmp_path: Path) -> None:
    insert(engine, [event("a", NOV + 60, 1.0, domain="acme.test")])
    with engine.begin() as conn:
        conn.execute(
            tickets.insert(),
            [
                {"domain": d, "priority": p, "subject": "x", "opened_by": "c", "opened_at": NOV}
                for d, p in (("acme.test", "S1"), ("other.test", "Critical"))
            ],
        )
    settings = SlaSettings(
        helpdesk_plans={"acme.test": "mithi-priority"}, registered_users={"acme.test": 12}
    )
    out = tmp_path / "r.html"
    write_report(engine, Month(2026, 11), settings, now=NOV + 86400, html_out=out)
    page = out.read_text()
    assert "helpdesk S1 (mithi-priority)" in page and "helpdesk Critical (telstra)" in page
    assert "<td>acme.test</td><td>12</td><td>0</td><td>20 / 5</td><td>no</td>" in page
