"""Pages from Jinja2 templates (autoescaped), with the headers every page carries.

The pages run no script at all, so the policy forbids every script; a held
message's HTML is shown only inside a sandboxed frame served with its own,
stricter policy (``PREVIEW_POLICY``): nothing remote, nothing executable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files
from typing import Any, Final

import nh3
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

PAGE_POLICY: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PREVIEW_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; "
    "frame-ancestors 'self'; base-uri 'none'; sandbox"
)
HEADERS: Final = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Markup a preview may keep: text structure only. No images (remote ones would tell the
# sender the mail was read), no forms, no styles from outside.
PREVIEW_TAGS: Final = frozenset(nh3.ALLOWED_TAGS) - {"img", "map", "area"}

_env = Environment(
    loader=PackageLoader("quarantine.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["when"] = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")
_env.filters["day"] = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A rendered page; templates see ``request`` and whatever the route passes."""
    body = _env.get_template(template).render(request=request, **context)
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def error(
    request: Request, status: int, title: str, detail: str = "", **context: Any
) -> HTMLResponse:
    """A friendly error page for people (the API answers problem+json instead)."""
    return page(request, "error.html", status, title=title, detail=detail, **context)


def preview(html: str) -> HTMLResponse:
    """A held message's HTML, sanitised, as a document only a sandboxed frame may show."""
    clean = nh3.clean(
        html, tags=set(PREVIEW_TAGS), url_schemes={"mailto"}, link_rel="noopener noreferrer"
    )
    document = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<base target='_blank'></head><body>" + clean + "</body></html>"
    )
    headers = {**HEADERS, "Content-Security-Policy": PREVIEW_POLICY}
    return HTMLResponse(document, headers=headers)


def stylesheet() -> str:
    """The one stylesheet, shipped as package data."""
    return files("quarantine.web").joinpath("static/style.css").read_text()
