"""The quarantine's section of the gateway config: quota, purge and digest schedule, links."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
    digests: bool = Field(
        True,
        description="send digests; false (with notify_new_accounts) on a gateway fed by replays,"
        " whose made-up recipients would each get notices and digests",
    )
