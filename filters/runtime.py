"""Policy: the validated configuration together with the databases it names, loaded once.

The pipeline reads a ``Policy`` and never touches a file; loading (and
reloading) the signature files and the model happens here, at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from time import perf_counter

from filters.antivirus import VirusDatabase
from filters.budget import Clock
from filters.model import TokenModel
from filters.policy import PolicyConfig, load_policy
from filters.signatures import SignatureDatabase


@dataclass(frozen=True)
class Policy:
    """Everything ``evaluate`` needs besides the message and its facts."""

    config: PolicyConfig
    viruses: VirusDatabase
    signatures: SignatureDatabase
    model: TokenModel | None
    # The time budget's clock; None (tests, replays that must be exact) means no budget.
    clock: Clock | None = None

    @classmethod
    def from_config(
        cls, config: PolicyConfig, *, model: Path | None = None, clock: Clock | None = perf_counter
    ) -> Policy:
        """Load every file the config names; ``model`` overrides the config's model path.

        ``clock`` times each message against ``limits.time_budget``; pass None
        for verdicts that may not depend on how busy the machine is.
        """
        av = config.antivirus
        viruses = VirusDatabase.load(
            av.signature_files, mass_mailer=av.mass_mailer, never_release=av.never_release
        )
        sigs = config.signatures.file
        model_path = model or config.model
        return cls(
            config=config,
            viruses=viruses,
            signatures=SignatureDatabase.load(sigs) if sigs else SignatureDatabase.empty(),
            model=TokenModel.load(model_path) if model_path else None,
            clock=clock,
        )

    def with_model(self, model: TokenModel | None) -> Policy:
        """The same policy scoring with another model: how a retrained model goes live."""
        return replace(self, model=model)

    @classmethod
    def load(
        cls, path: Path, *, model: Path | None = None, clock: Clock | None = perf_counter
    ) -> Policy:
        return cls.from_config(load_policy(path), model=model, clock=clock)
