"""From verdict to records: who may get a DSN, what a virus record keeps."""

from __future__ import annotations

import pytest

from filters.verdict import Action, Category, Hit, Stage, Verdict, VirusFinding
from service.actions import decide
from store.records import Spooled

MESSAGE = Spooled("Q1", 0.0, "alice@sender.test", ("bob@example.test",), b"Subject: hi\r\n\r\nx")


def test_mail_from_a_listed_client_gets_no_dsn_even_when_clean() -> None:
    listed = Hit("BLACKLIST_DNSBL", Stage.BLACKLIST, "client 192.0.2.1 listed in bl.test", 1.0)
    _, items, _ = decide(
        MESSAGE, "example.test", ("bob@example.test",),
        Verdict(Action.DELIVER, Category.CLEAN, hits=(listed,)), 0.0,
    )  # fmt: skip
    assert [item.is_spam for item in items] == [True]  # is_spam: no DSN to this sender
    _, items, _ = decide(
        MESSAGE, "example.test", ("bob@example.test",), Verdict(Action.DELIVER, Category.CLEAN), 0.0
    )
    assert [item.is_spam for item in items] == [False]


@pytest.mark.parametrize("symbol", ["SPF_FAIL", "DMARC_REJECT"])
def test_a_sender_that_failed_authentication_gets_no_dsn(symbol: str) -> None:
    failed = Hit(symbol, Stage.HEURISTICS, "sender not authorised", 1.0)
    _, items, _ = decide(
        MESSAGE, "example.test", ("bob@example.test",),
        Verdict(Action.DELIVER, Category.CLEAN, hits=(failed,)), 0.0,
    )  # fmt: skip
    assert [item.is_spam for item in items] == [True]


def test_a_virus_record_names_each_signature_once() -> None:
    found = tuple(VirusFinding("Eicar-Test-Signature", f"part {i}") for i in range(931))
    verdict = Verdict(Action.QUARANTINE, Category.VIRUS, viruses=found)
    _, _, held = decide(MESSAGE, "example.test", ("bob@example.test",), verdict, 0.0)
    assert held is not None and held.viruses == ("Eicar-Test-Signature",)
