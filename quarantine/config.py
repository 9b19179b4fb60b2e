"""The quarantine's section of the gateway config: quota, purge and digest schedule, links,
and the bounds on what customers may set over REST."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from filters.policy import ContentAction, StageActions
from filters.verdict import Action

# Redirect needs the domain's `redirect_to` in the policy file: an operator allows it per stage.
_STAGE_DEFAULT = ["tag_header", "tag_subject", "delete", "quarantine"]


class CustomerRuleBounds(BaseModel):
    """``[quarantine.customer_rules]``: what a customer may set over REST, within the contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_rules: int = Field(50, ge=0, description="content rules per domain; 0: none over REST")
    max_pattern_length: int = Field(200, ge=1, description="characters in a rule's regex")
    max_words: int = Field(100, ge=0, description="words in one rule")
    content_actions: list[ContentAction] = Field(
        default_factory=lambda: list(ContentAction),
        description="content actions a customer's rule may take",
    )
    stage_actions: dict[str, list[str]] = Field(
        default_factory=lambda: {
            stage: list(_STAGE_DEFAULT) for stage in StageActions.model_fields
        },
        description="per spam stage (blacklist, dnsbl, signatures), the actions a customer may"
        " choose; a stage left out cannot be changed",
    )

    @field_validator("stage_actions")
    @classmethod
    def _known(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(StageActions.model_fields))
        if unknown:
            raise ValueError(f"unknown stage(s) {', '.join(unknown)}; expected blacklist, dnsbl"
                             ", signatures")  # fmt: skip
        return {stage: [Action.parse(a).label for a in actions] for stage, actions in value.items()}

    def public(self) -> dict[str, Any]:
        """The bounds as a customer reads them next to its settings."""
        return self.model_dump(mode="json")


class QuarantineConfig(BaseModel):
    """``[quarantine]``: how much is held, how often it is purged, when digests go out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quota_per_domain: int = Field(100_000, ge=0, description="held messages per domain; then tag")
    purge_interval: float = Field(3600.0, gt=0, description="seconds between retention purges")
    digest_interval: float = Field(60.0, gt=0, description="seconds between digest checks")
    digest_hour: int = Field(8, ge=0, le=23, description="local hour daily digests go out (UTC)")
    link_secret: str | None = Field(
        None, min_length=32, description="HMAC key for digest links; unset: generated in data dir"
    )
    link_ttl: float = Field(7 * 86400.0, gt=0, description="seconds a digest link stays valid")
    public_url: str | None = Field(
        None, description="base URL in digests; default the HTTP address"
    )
    notify_new_accounts: bool = Field(True, description="mail a recipient when its account opens")
    customer_rules: CustomerRuleBounds = Field(
        default_factory=CustomerRuleBounds,
        description="what customers may set over /api/v1/content-settings",
    )
    digests: bool = Field(
        True,
        description="send digests; false (with notify_new_accounts) on a gateway fed by replays,"
        " whose made-up recipients would each get notices and digests",
    )
