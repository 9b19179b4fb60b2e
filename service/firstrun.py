"""First run of ``mailmoat serve``: find the token model, say how to get one, or train a sample one.

A fresh clone or a fresh wheel install has no model (it is trained from a
corpus, not shipped). Instead of a bare "model file not found", ``serve``
names the path it looked at and the two ways to fill it: train on a real
labelled corpus, or ``--train-sample`` to train now on the built-in
generated sample (good for trying the gateway, not for production mail).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from filters.mail import Mail
from filters.policy import load_policy
from filters.training import train
from loadtest.corpus import read_corpus
from loadtest.generate import generate
from service.config import GatewayConfig

SAMPLE_COUNT = 600
"""Messages in the built-in training sample: enough for a usable model in a few seconds."""


def model_path(config: GatewayConfig) -> Path | None:
    """The model the gateway will load: ``filter.model``, else the policy's ``model``."""
    if config.filter.model is not None:
        return config.filter.model
    if config.filter.policy is None:
        return None
    return load_policy(config.filter.policy).model


def missing_model_hint(path: Path) -> str:
    """What to tell a first-time operator whose model file is missing."""
    return (
        f"no token model at {path} (filter.model in the gateway config).\n"
        f"  Train one on a labelled corpus:  mailmoat train --corpus CORPUS --out {path}\n"
        "  or on the built-in sample now:   mailmoat serve --train-sample"
        " (for trying Mailmoat, not for production mail)"
    )


def train_sample(path: Path, count: int = SAMPLE_COUNT, seed: int = 1) -> str:
    """Generate the built-in sample corpus, train a model on it, save it at ``path``."""
    with tempfile.TemporaryDirectory(prefix="mailmoat-sample-") as folder:
        corpus = Path(folder)
        generate(corpus, count, seed=seed)
        labelled = [
            (Mail.from_file_bytes(item.data), item.label == "spam") for item in read_corpus(corpus)
        ]
        model = train(labelled, seed=seed, corpus="built-in sample")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    spam = sum(1 for _, is_spam in labelled if is_spam)
    return f"trained a sample model on {len(labelled) - spam} ham + {spam} spam -> {path}"
