"""The plain-address fast path gives aiosmtpd's own answer, and leaves everything else to it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiosmtpd.smtp import SMTP

from service.addresses import split_plain_path


def _aiosmtpd(arg: str) -> tuple[str | None, str | None]:
    return SMTP._getaddr(SimpleNamespace(local_part_limit=0), arg)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "arg",
    [
        "<bob@example.test>",
        "<bob@example.test> SIZE=1234 BODY=8BITMIME",
        "<bob@example.test> \tSIZE=1  X=(2) ",
        "<bob@example.test>SIZE=1",
        "<bob@example.test> ",
        "<Bob.O'Hara+tag@Mail-1.Example.TEST>",
        "<#recipient#@example.test>",
        "<a{b}|c~d@x>",
    ],
)
def test_plain_paths_split_as_aiosmtpd_parses_them(arg: str) -> None:
    assert split_plain_path(arg) == _aiosmtpd(arg)


@pytest.mark.parametrize(
    "arg",
    [
        "<>",  # the null sender
        "bob@example.test",  # no brackets
        " <bob@example.test>",  # leading space
        '<"bob smith"@example.test>',  # quoted local part
        "<bob..smith@example.test>",  # empty atom: obsolete syntax
        "<.bob@example.test>",
        "<bob@[192.0.2.1]>",  # address literal
        "<bob@example.test",  # unclosed
        "<bob(comment)@example.test>",
        "<@relay.test:bob@example.test>",  # source route
        "<bjørn@example.test>",  # UTF-8 (SMTPUTF8)
        "<bob@example.test\r\n>",
        "<bob@example.test> (comment) SIZE=1",
    ],
)
def test_anything_else_is_left_to_the_parser(arg: str) -> None:
    assert split_plain_path(arg) is None
