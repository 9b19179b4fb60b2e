"""Online learning in a running gateway: releases and confirmed misses move the model, within
guards; the learned model is used for the next message and survives a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from filters.mail import Mail
from filters.model import TokenModel
from filters.training import train
from service.config import LearningConfig
from service.learning import Label, learn, learned_through
from tests.filters.test_model import HAM_WORDS, SPAM_WORDS, synthetic
from tests.quarantine.conftest import Env, start_env, stop_env
from tests.service.gatewayfixtures import eventually, message, rows, send

POLICY = """
[domains."example.test"]
[domains."other.test"]
"""
SPAMMY = " ".join(SPAM_WORDS[:6])


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.npz"
    # Regression only: every synthetic word is pure spam or pure ham, so its Fisher evidence
    # is certain and one release could not overturn it (tests/filters covers that part).
    train(synthetic(200), epochs=150, evidence_weight=0.0).save(path)
    return path


async def started(tmp_path: Path, base: Path, **learning: Any) -> Env:
    model = tmp_path / "model.npz"
    model.write_bytes(base.read_bytes())
    return await start_env(
        tmp_path,
        POLICY,
        filter={"model": str(model)},
        learning={"interval": 3600.0, **learning},  # the test calls catch_up itself
    )


@pytest.fixture
async def env(tmp_path: Path, base_model: Path) -> AsyncIterator[Env]:
    running = await started(tmp_path, base_model, rate=10.0)
    yield running
    await stop_env(running)


async def catch_up(env: Env) -> int:
    learner = env.gateway.learner
    assert learner is not None
    return await asyncio.to_thread(learner.catch_up)


async def filtered(env: Env, subject: str, body: str, sender: str = "alice@sender.test") -> str:
    """Send one message to bob@example.test; returns its outcome once filtered."""
    before = len(rows(env.db, "SELECT id FROM events"))
    await send(
        env.gateway.smtp_port, message(subject=subject, body=body, sender=sender), sender=sender
    )
    await eventually(lambda: len(rows(env.db, "SELECT id FROM events")) > before)
    return str(rows(env.db, "SELECT outcome FROM events ORDER BY id DESC LIMIT 1")[0][0])


def last_score(env: Env) -> float:
    return float(rows(env.db, "SELECT score FROM events ORDER BY id DESC LIMIT 1")[0][0])


def held_id(env: Env) -> str:
    return str(rows(env.db, "SELECT id FROM quarantine ORDER BY rowid DESC LIMIT 1")[0][0])


def model_of(env: Env) -> TokenModel:
    path = env.gateway.config.filter.model
    assert path is not None
    return TokenModel.load(path)


async def test_a_released_false_positive_passes_next_time_and_after_a_restart(
    env: Env, tmp_path: Path
) -> None:
    # Ham in spam words: the model holds it.
    assert await filtered(env, "cheap pills", SPAMMY) == "quarantined"
    held_score = last_score(env)
    released = await env.http.post(
        f"/api/v1/quarantine/{held_id(env)}/release", headers=env.auth("alpha"), json={}
    )
    assert released.status_code == 200, released.text
    assert await catch_up(env) == 1
    assert await filtered(env, "cheap pills", SPAMMY) == "delivered"
    assert last_score(env) < held_score
    learned = model_of(env)
    assert learned.metadata["updates"] == "1" and learned_through(learned) == 1
    # A restart loads the learned file: the message still passes, nothing is learned twice.
    await env.gateway.stop()
    env.sink.stop()
    again = await start_env(
        tmp_path, POLICY, filter={"model": str(env.gateway.config.filter.model)}
    )
    try:
        assert await filtered(again, "cheap pills", SPAMMY) == "delivered"
        assert await catch_up(again) == 0
    finally:
        await stop_env(again)


async def test_an_operator_confirmed_miss_trains_spam(env: Env) -> None:
    ham_words = " ".join(HAM_WORDS[:6])
    assert await filtered(env, "meeting agenda", ham_words) == "delivered"
    delivered_score = last_score(env)
    queue_id = rows(env.db, "SELECT message_id FROM events ORDER BY id DESC LIMIT 1")[0][0]
    claim = await env.http.post(
        "/sla/claims/false-negatives",
        headers=env.auth("alpha"),
        json={"message_id": queue_id, "domain": "example.test"},
    )
    assert claim.status_code == 201, claim.text
    assert await catch_up(env) == 0  # a customer's report alone teaches nothing
    decided = await env.http.post(
        f"/sla/claims/{claim.json()['id']}/decision",
        headers=env.auth("ops"),
        json={"confirmed": True},
    )
    assert decided.status_code == 200, decided.text
    assert await catch_up(env) == 1
    await filtered(env, "meeting agenda", ham_words)
    assert last_score(env) > delivered_score


async def test_a_virus_release_teaches_nothing(env: Env) -> None:
    virus = await env.hold_virus()
    released = await env.http.post(
        f"/api/v1/quarantine/{virus}/release",
        headers=env.auth("ops"),
        json={"reason": "checked with the sender"},
    )
    assert released.status_code == 200, released.text
    assert await catch_up(env) == 1  # the label is read, and skipped
    learned = model_of(env)
    assert "updates" not in learned.metadata and learned_through(learned) == 1


async def test_a_flood_of_releases_from_one_account_cannot_flip_the_model(
    tmp_path: Path, base_model: Path
) -> None:
    env = await started(tmp_path, base_model, per_sender_per_day=2, per_domain_per_day=4)
    spam = message(subject="winner lottery", body=" ".join(SPAM_WORDS), sender="deals@bulk.example")
    before = TokenModel.load(base_model).logit(Mail(spam.as_bytes()))
    try:
        for i in range(12):
            sender = f"promo@shop{i % 3}.example"
            body = f"{SPAMMY} offer{i}"
            assert await filtered(env, f"cheap pills {i}", body, sender=sender) == "quarantined"
            answer = await env.http.post(
                f"/api/v1/quarantine/{held_id(env)}/release", headers=env.auth("alpha"), json={}
            )
            assert answer.status_code == 200
        assert await catch_up(env) == 12
        learned = model_of(env)
        assert learned.metadata["updates"] == "4"  # the customer domain's daily cap
        # Each update moves any message's logit by at most rate (1.0): four at most 4.0.
        assert before - 4.0 <= learned.logit(Mail(spam.as_bytes())) < before
        outcome = await filtered(
            env, "winner lottery", " ".join(SPAM_WORDS), sender="deals@bulk.example"
        )
        assert outcome == "quarantined"
    finally:
        await stop_env(env)


def _label(n: int, **fields: Any) -> Label:
    values: dict[str, Any] = {
        "id": n, "message_id": f"m{n}", "is_spam": False, "source": "release",
        "domain": "example.test", "created_by": "alpha", "created_at": 1_795_000_000.0 + n,
        "mail_from": f"a@s{n}.example", "raw": f"Subject: {SPAMMY}\n\n{SPAMMY}\n".encode(),
        "virus": False,
    }  # fmt: skip
    return Label(**{**values, **fields})


@pytest.mark.parametrize(
    "fields",
    [
        {"created_by": "link:bob@example.test"},  # an end user's digest link
        {"created_by": "user:bob@example.test"},  # an end user's web session
        {"is_spam": True, "source": "release"},  # spam only from confirmed reports
        {"raw": None},  # purged since
        {"virus": True},
    ],
)
def test_untrusted_labels_are_skipped(base_model: Path, fields: dict[str, Any]) -> None:
    model = TokenModel.load(base_model)
    learned = learn(model, [_label(7, **fields)], LearningConfig())
    assert learned.weights == model.weights and learned_through(learned) == 7


def test_caps_count_per_sender_domain_and_reset_the_next_day(base_model: Path) -> None:
    config = LearningConfig(per_sender_per_day=2, per_domain_per_day=100)
    same_sender = [_label(n, mail_from="a@one.example") for n in range(1, 6)]
    learned = learn(TokenModel.load(base_model), same_sender, config)
    assert learned.metadata["updates"] == "2"
    tomorrow = _label(6, mail_from="a@one.example", created_at=1_795_000_000.0 + 86_400)
    assert learn(learned, [tomorrow], config).metadata["updates"] == "3"
