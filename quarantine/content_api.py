"""Customers read and change their own content rules and spam stage actions over REST.

Within the bounds the operator sets (``[quarantine.customer_rules]``): how
many rules, how long a regex, which content actions and which action per
spam stage. A customer's regex is compiled when it is stored and, like every
content rule, searched under ``limits.regex_timeout``. Redirects and copies go
only to an address in the domain itself, never to a third party. A change
applies to the next message (``DynamicLists``), without reloading the policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from filters.lists import domain_of
from filters.policy import ContentAction, ContentRule
from filters.verdict import Action
from quarantine import content_settings
from quarantine.api_errors import errors
from quarantine.api_models import timestamp
from quarantine.config import CustomerRuleBounds
from quarantine.service import Quarantine
from store.principal import Principal

Stage = Literal["blacklist", "dnsbl", "signatures"]
StageAction = Annotated[
    Action,
    BeforeValidator(lambda v: Action.parse(v) if isinstance(v, str) else v),
    PlainSerializer(lambda a: a.label, return_type=str),
    WithJsonSchema({"type": "string", "enum": [a.label for a in Action]}),
]
Domain = Annotated[str, PathParam(max_length=255, description="a customer domain")]
_SENDS = (ContentAction.REDIRECT, ContentAction.COPY)


class ContentSettingsIn(BaseModel):
    """A domain's content rules and stage actions, replaced whole."""

    model_config = ConfigDict(extra="forbid")

    content_rules: list[ContentRule] = Field(
        default_factory=list, description="applied after the policy file's rules of the domain"
    )
    actions: dict[Stage, StageAction] = Field(
        default_factory=dict, description="spam stage -> action, replacing the policy file's"
    )


class ContentSettingsOut(ContentSettingsIn):
    domain: str
    updated_at: datetime | None
    updated_by: str | None
    bounds: dict[str, Any] = Field(description="what the operator lets this domain set")


def _bound_errors(
    body: ContentSettingsIn, domain: str, bounds: CustomerRuleBounds
) -> list[dict[str, Any]]:
    """Each setting outside the operator's bounds, with where it is (FastAPI's error shape)."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    rules = body.content_rules
    if len(rules) > bounds.max_rules:
        found.append((("content_rules",), f"at most {bounds.max_rules} rules"))
    names: set[str] = set()
    for i, rule in enumerate(rules):
        at: tuple[str | int, ...] = ("content_rules", i)
        if rule.name in names:
            found.append(((*at, "name"), f"rule name {rule.name!r} is used twice"))
        names.add(rule.name)
        if rule.pattern is not None and len(rule.pattern) > bounds.max_pattern_length:
            found.append(((*at, "pattern"), f"at most {bounds.max_pattern_length} characters"))
        if len(rule.words) > bounds.max_words:
            found.append(((*at, "words"), f"at most {bounds.max_words} words"))
        if rule.action not in bounds.content_actions:
            allowed = ", ".join(a.value for a in bounds.content_actions) or "none"
            found.append(((*at, "action"), f"{rule.action.value!r} is not allowed ({allowed})"))
        if rule.action in _SENDS and rule.admin is None:
            found.append(((*at, "admin"), f"a {rule.action.value} rule names its `admin`"))
        if rule.admin is not None and domain_of(rule.admin) != domain:
            found.append(((*at, "admin"), f"{rule.admin!r} is not an address in {domain}"))
    for stage, action in body.actions.items():
        allowed_actions = bounds.stage_actions.get(stage, [])
        if action.label not in allowed_actions:
            choices = ", ".join(allowed_actions) or "none: set by the operator"
            found.append((("actions", stage), f"{action.label!r} is not allowed ({choices})"))
    return [{"loc": ("body", *loc), "msg": msg, "type": "value_error"} for loc, msg in found]


def create_router(
    quarantine: Quarantine,
    principal: Callable[..., Awaitable[Principal]],
    bounds: CustomerRuleBounds,
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["content control"])
    caller = Depends(principal)

    def _out(settings: content_settings.Settings) -> ContentSettingsOut:
        return ContentSettingsOut(
            domain=settings.domain,
            content_rules=list(settings.content_rules),
            actions=settings.actions,
            updated_at=timestamp(settings.updated_at) if settings.updated_at else None,
            updated_by=settings.updated_by,
            bounds=bounds.public(),
        )

    def _visible(who: Principal, domain: str) -> str:
        name = domain.lower().strip(".")
        if not who.sees(name):
            raise HTTPException(404, "no such domain")
        return name

    @router.get("/content-settings/{domain}", response_model=ContentSettingsOut,
                responses=errors(401, 404))  # fmt: skip
    async def read_settings(domain: Domain, who: Principal = caller) -> ContentSettingsOut:
        """The domain's content rules and stage actions set over REST (the policy file's not
        included), and the bounds they must stay within."""
        name = _visible(who, domain)
        return _out(await quarantine.read(content_settings.get, name))

    @router.put("/content-settings/{domain}", response_model=ContentSettingsOut,
                responses=errors(401, 404, 422))  # fmt: skip
    async def write_settings(
        domain: Domain, body: ContentSettingsIn, who: Principal = caller
    ) -> ContentSettingsOut:
        """Replace the domain's content rules and stage actions; the next message sees them."""
        name = _visible(who, domain)
        problems = _bound_errors(body, name, bounds)
        if problems:
            raise RequestValidationError(problems)
        actions = {str(stage): action for stage, action in body.actions.items()}
        stored = await quarantine.write(
            content_settings.put, name, body.content_rules, actions, by=who.name,
            now=quarantine.clock(),
        )  # fmt: skip
        quarantine.on_lists_changed()
        return _out(stored)

    return router
