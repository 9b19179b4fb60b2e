"""Submission accounts and message direction on both engines: hashes, unique logins, and the
direction a message keeps through a crash (reclaimed) and into its events."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import submission_users
from store.leases import Lease
from store.records import Direction, EventRecord, Outcome, Spooled
from store.schema import events
from store.store import Store

NOW = 1000.0


def test_hashes_are_salted_and_checked() -> None:
    first, second = (submission_users.hash_password("a long secret", n=2**4) for _ in range(2))
    assert first != second and first.startswith("scrypt$16$8$1$")
    assert submission_users.verify_password("a long secret", first)
    assert not submission_users.verify_password("a long secreT", first)


@pytest.mark.parametrize("stored", ["", "plain", "scrypt$x$8$1$AA==$AA==", "md5$16$8$1$AA==$AA=="])
def test_a_malformed_hash_never_matches(stored: str) -> None:
    assert not submission_users.verify_password("", stored)


def test_accounts_are_unique_per_login(store_location: Path | str) -> None:
    store = Store(store_location)
    cheap = submission_users.hash_password("a long secret", n=2**4)
    store.write(submission_users.add, "b.test", "bob@b.test", cheap, NOW)
    store.write(submission_users.add, "a.test", "ann@a.test", cheap, NOW)
    taken = r"already exists \(for b\.test\)"
    with pytest.raises(submission_users.SubmissionUserError, match=taken):
        store.write(submission_users.add, "a.test", "bob@b.test", cheap, NOW)
    listed = store.read(submission_users.listing)
    assert [(u.domain, u.login) for u in listed] == [("a.test", "ann@a.test"),
                                                     ("b.test", "bob@b.test")]  # fmt: skip
    with pytest.raises(submission_users.SubmissionUserError, match="no submission user"):
        store.write(submission_users.remove, "a.test", "bob@b.test")  # not that domain's
    store.write(submission_users.remove, "b.test", "bob@b.test")
    assert store.read(submission_users.find, "bob@b.test") is None
    store.close()


def test_direction_survives_a_crash_and_reaches_the_events(store_location: Path | str) -> None:
    store = Store(store_location, lease=Lease("a"))
    sent = Spooled("Q1", NOW, "ann@a.test", ("x@foreign.test",), b"Subject: x\r\n\r\nx",
                   direction=Direction.OUTBOUND)  # fmt: skip
    store.spool([sent, Spooled("Q2", NOW, "x@foreign.test", ("ann@a.test",), b"\r\n")])
    store.close()
    again = Store(store_location, lease=Lease("a"))  # a restart takes back its own spool
    claimed = {m.id: m.direction for m in again.claim_unfiltered(NOW, 10, own=True)}
    assert claimed == {"Q1": Direction.OUTBOUND, "Q2": Direction.INBOUND}
    record = EventRecord("foreign.test", "deliver", "clean", Outcome.DELIVERED, 0.0, (), (), 1)
    again.record_filtered(sent, NOW, [(record, [], None)])
    assert again.read(lambda c: c.execute(events.select()).one().direction) == "outbound"
    again.close()
