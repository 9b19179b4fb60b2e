"""The signed-in viewer of a request, and the held messages that viewer may see.

A user sees only mail addressed to them; an administrator sees every user
of their domains. Anything else is "not found", exactly like a missing id,
so a page never confirms that someone else's message exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse

from quarantine.held import HeldMessage
from quarantine.service import NotFound, Quarantine
from quarantine.web import render
from quarantine.web.session import Session, Sessions, Viewer


@dataclass(frozen=True, slots=True)
class Visit:
    """One request's session and who it signs in."""

    session: Session
    viewer: Viewer
    csrf: str


class Access:
    """Resolves requests to visits and message ids to messages the viewer may see."""

    def __init__(self, quarantine: Quarantine, sessions: Sessions) -> None:
        self.quarantine = quarantine
        self.sessions = sessions

    async def visit(self, request: Request) -> Visit | None:
        session = self.sessions.current(request)
        viewer = await self.sessions.viewer(session)
        return Visit(session, viewer, self.sessions.csrf(session)) if viewer else None

    async def posted(self, request: Request, csrf: str) -> Visit | HTMLResponse:
        """The visit behind a form post, or the page to answer instead (signed out, bad token)."""
        visit = await self.visit(request)
        if visit is None:
            return render.error(
                request,
                401,
                "You are signed out",
                "Sign in again, then repeat what you were doing.",
                retry=True,
            )
        if not self.sessions.csrf_ok(visit.session, csrf):
            return render.error(
                request, 403, "This form has expired", "Go back, reload the page and try again."
            )
        return visit

    async def message(self, viewer: Viewer, held_id: str) -> HeldMessage:
        """A held message the viewer may see; ``NotFound`` otherwise."""
        found = await self.quarantine.get(viewer.principal, held_id[:64])
        mine = {r.lower() for r in found.summary.recipients}
        if viewer.address is not None and viewer.address not in mine:
            raise NotFound(held_id)
        return found
