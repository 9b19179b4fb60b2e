"""One-click digest links: a confirmation page (GET), then the action (POST).

GET never acts: mail scanners and link previewers fetch URLs in mail, and a
single-use link they consumed would be lost to its owner. The page's button
POSTs the same token, which is verified, spent, and carried out.
"""

from __future__ import annotations

import html

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from quarantine.links import ExpiredLink, LinkError, verify
from quarantine.service import NotFound, Refused
from quarantine.upkeep import Upkeep

_VERBS = {"release": "Release this message", "delete": "Delete this message",
          "allow_sender": "Always allow this sender"}  # fmt: skip


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    text = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Mailmoat</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(text, status_code=status)


def create_router(upkeep: Upkeep) -> APIRouter:
    router = APIRouter(tags=["digest links"])

    @router.get("/q/{token}", response_class=HTMLResponse)
    async def confirm(token: str) -> HTMLResponse:
        """A digest link's confirmation page; only its button acts (link scanners cannot)."""
        try:
            claim = verify(upkeep.secret, token, now=upkeep.clock())
        except ExpiredLink:
            return _page("This link has expired", "<p>Ask for a new digest.</p>", 410)
        except LinkError:
            return _page("This link is not valid", "", 400)
        form = (
            f"<form method='post' action='/q/{html.escape(token)}'>"
            f"<button type='submit'>{html.escape(_VERBS[claim.action])}</button></form>"
        )
        return _page(_VERBS[claim.action], form)

    @router.post("/q/{token}", response_class=HTMLResponse)
    async def act(token: str) -> HTMLResponse:
        """Carry out a digest link once: release, delete or allow the sender."""
        try:
            done = await upkeep.follow(token)
        except ExpiredLink:
            return _page("This link has expired", "<p>Ask for a new digest.</p>", 410)
        except LinkError:
            return _page("This link is not valid", "", 400)
        except NotFound:
            return _page("This message is no longer in quarantine", "", 404)
        except Refused as exc:
            return _page("Nothing done", f"<p>{html.escape(str(exc))}</p>", exc.status)
        return _page("Done", f"<p>{html.escape(done)}</p>")

    return router
