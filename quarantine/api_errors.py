"""The error responses the REST API really sends, documented per operation in OpenAPI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

PROBLEM_JSON = "application/problem+json"

_WHEN = {
    400: "malformed request (a cursor that was not ours)",
    401: "no API token, or an unknown or revoked one",
    403: "understood but forbidden: virus release without authorisation, never-release virus",
    404: "no such object, or one of another customer (the two look the same)",
    409: "conflicts with the object's state: already pending, already decided, not a virus",
    422: "the request does not validate; `errors` says where",
}


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error."""

    type: str = Field("about:blank", description="always about:blank: `title` is the status")
    title: str = Field(description="the HTTP status phrase")
    status: int
    detail: str = Field(description="what went wrong, in words fit to show")
    errors: list[dict[str, Any]] | None = Field(None, description="with 422: each invalid field")


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of an operation that can fail with ``codes``."""
    return {
        code: {"model": Problem, "description": _WHEN[code], "content": {PROBLEM_JSON: {}}}
        for code in codes
    }
