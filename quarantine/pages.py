"""One-click digest links: a confirmation page (GET), then the action (POST).

GET never acts: mail scanners and link previewers fetch URLs in mail, and a
single-use link they consumed would be lost to its owner. The page names the
message (subject, sender, why it was held) and its button POSTs the same
token, which is verified, spent, and carried out.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from quarantine.links import ExpiredLink, LinkError
from quarantine.service import NotFound, Refused
from quarantine.upkeep import Upkeep
from quarantine.web import render

_VERBS = {"release": "Release this message", "delete": "Delete this message",
          "allow_sender": "Always allow this sender",
          "request_release": "Ask for this message to be released"}  # fmt: skip


def _failure(request: Request, exc: Exception) -> HTMLResponse:
    if isinstance(exc, ExpiredLink):
        return render.error(request, 410, "This link has expired", "Ask for a new digest.")
    if isinstance(exc, NotFound):
        return render.error(request, 404, "This message is no longer in quarantine")
    if isinstance(exc, Refused):
        return render.error(request, exc.status, "Nothing done", str(exc))
    return render.error(request, 400, "This link is not valid")


def create_router(upkeep: Upkeep) -> APIRouter:
    router = APIRouter(tags=["digest links"])

    @router.get("/q/{token}", response_class=HTMLResponse)
    async def confirm(request: Request, token: str) -> HTMLResponse:
        """A digest link's confirmation page; only its button acts (link scanners spend none)."""
        try:
            claim, summary = await upkeep.claimed(token)
        except (LinkError, NotFound) as exc:
            return _failure(request, exc)
        return render.page(request, "link_confirm.html", token=token, m=summary,
                           verb=_VERBS[claim.action], action=claim.action)  # fmt: skip

    @router.post("/q/{token}", response_class=HTMLResponse)
    async def act(request: Request, token: str, reason: str = Form("")) -> HTMLResponse:
        """Carry out a digest link once: release, delete, allow the sender or request a release."""
        try:
            done = await upkeep.follow(token, reason)
        except (LinkError, NotFound, Refused) as exc:
            return _failure(request, exc)
        return render.page(request, "link_done.html", done=done)

    return router
