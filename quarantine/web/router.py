"""The customer pages as one router for the gateway's HTTP app: sign-in, mailbox, admin."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from quarantine.service import Quarantine
from quarantine.web import access, actions, admin, mailbox, render, signin
from quarantine.web.session import Sessions


def create_router(
    quarantine: Quarantine,
    *,
    secret: bytes,
    base_url: Callable[[], str],
    hostname: str,
    clock: Callable[[], float],
) -> APIRouter:
    """Everything under ``/my/``; ``/`` leads there, as the digest's "Manage" link does."""
    sessions = Sessions(quarantine, secret, clock, base_url)
    seen = access.Access(quarantine, sessions)
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def home() -> RedirectResponse:
        return RedirectResponse("/my/", status_code=303)

    router.include_router(
        signin.create_router(
            signin.SignIn(quarantine, sessions, base_url=base_url, hostname=hostname, clock=clock)
        )
    )
    router.include_router(admin.create_router(seen))
    router.include_router(actions.create_router(seen))
    router.include_router(mailbox.create_router(seen))

    @router.get("/my/{rest:path}")
    async def not_found(request: Request, rest: str) -> HTMLResponse:
        return render.error(request, 404, "There is no such page", "Start again from the list.")

    return router
