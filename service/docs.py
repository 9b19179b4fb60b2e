"""``/docs`` from self-hosted Swagger UI assets, and an OpenAPI schema that lists real errors.

FastAPI's default ``/docs`` page loads Swagger UI from a CDN, so it is blank
on an offline or firewalled operator network. The assets come from the
``swagger-ui-bundle`` package instead and are served under ``/docs/static``.

The generated schema documents only 200 and FastAPI's own 422 shape, but
every error the gateway sends is RFC 9457 problem+json (``service.problems``).
The schema gets a ``Problem`` component, and each operation lists the errors
it can really answer: 422 for bad input (replacing FastAPI's shape), 401 and
404 under the authenticated ``/api`` and ``/sla`` paths, 503 from ``/readyz``,
401 from ``/metrics`` when it requires credentials.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from service.problems import PROBLEM_JSON

STATIC = "/docs/static"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; extra members (errors, failed) depend on the error.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "description": "the HTTP status phrase"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what went wrong, for a person"},
        "errors": {
            "type": "array",
            "description": "422 only: each field that did not validate",
            "items": {"type": "object"},
        },
    },
}

_WHY = {
    401: "No credentials, or wrong ones (WWW-Authenticate says which scheme).",
    404: "No such resource, or one outside the caller's domains (the same answer).",
    422: "The request does not match what this endpoint expects; `errors` lists each field.",
    503: "Not ready: `failed` names the checks that failed.",
}


def _problem(status: int) -> dict[str, Any]:
    return {
        "description": _WHY[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _errors_of(path: str, operation: dict[str, Any], metrics_auth: bool) -> list[int]:
    statuses = [422] if "422" in operation.get("responses", {}) else []
    if path.startswith(("/api/", "/sla/")):
        statuses += [401, 404]
    if path == "/readyz":
        statuses.append(503)
    if path == "/metrics" and metrics_auth:
        statuses.append(401)
    return statuses


def document_errors(schema: dict[str, Any], *, metrics_auth: bool) -> dict[str, Any]:
    """Add the Problem component and each operation's problem+json error responses."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in _errors_of(path, operation, metrics_auth):
                responses[str(status)] = _problem(status)
    return schema


def install_docs(app: FastAPI, *, metrics_auth: bool) -> None:
    """Serve ``/docs`` offline and make ``/openapi.json`` list the real error responses.

    ``app`` must be created with ``docs_url=None`` and ``redoc_url=None``.
    """
    app.mount(STATIC, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon-32x32.png",
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = document_errors(schema, metrics_auth=metrics_auth)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
