"""Signing in: a magic link mailed to the user, or a domain administrator's API token.

Asking for a link answers the same page whether or not the address has a
quarantine account, and the lookup and mailing run after the answer, so
neither the words nor the timing tell. The link is sealed, expires, and is
spent (its nonce recorded) when used; opening it shows a button, because
mail scanners fetch links and must not spend them. Requests are limited
per address and per client.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Final

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError

from filters.lists import domain_of
from quarantine import accounts, tokens
from quarantine.service import Quarantine
from quarantine.web import render
from quarantine.web.ratelimit import RateLimit
from quarantine.web.seal import BadSeal, seal, unseal
from quarantine.web.session import Kind, Session, Sessions
from quarantine.web.signin_mail import render_signin
from store.quarantine_tables import link_uses
from store.records import DeliveryKind

log = logging.getLogger("mailmoat.quarantine.web")

LINK_PURPOSE: Final = "signin"
LINK_MINUTES: Final = 15


class SignIn:
    """The sign-in routes' state: limits and the tasks mailing links."""

    def __init__(
        self,
        quarantine: Quarantine,
        sessions: Sessions,
        *,
        base_url: Callable[[], str],
        hostname: str,
        clock: Callable[[], float],
    ) -> None:
        self.quarantine = quarantine
        self.sessions = sessions
        self.base_url = base_url
        self.sender = f"quarantine@{hostname}"
        self.clock = clock
        self.per_address = RateLimit(3, 900, clock)
        self.per_client = RateLimit(10, 900, clock)
        self.tasks: set[asyncio.Task[None]] = set()

    def link_for(self, address: str) -> str:
        token = seal(
            self.sessions.secret,
            LINK_PURPOSE,
            {"a": address, "n": secrets.token_urlsafe(16)},
            expires_at=self.clock() + LINK_MINUTES * 60,
        )
        return f"{self.base_url()}/my/signin/{token}"

    async def mail_link(self, address: str) -> None:
        """Mail a link through the gateway's own delivery path, if the address has an account."""
        try:
            if await self.quarantine.read(accounts.get, address) is None:
                return
            now = self.clock()
            raw = render_signin(
                recipient=address,
                sender=self.sender,
                link=self.link_for(address),
                minutes=LINK_MINUTES,
                now=now,
            )
            store = self.quarantine.store
            created = await self.quarantine.writer.call(
                store.submit, raw, [address], now, DeliveryKind.NOTIFY
            )
            self.quarantine.outbound.add(created)
        except Exception:  # the person already has their answer; the log keeps the failure
            log.exception("sign-in link for %s not mailed", address)

    async def spend(self, token: str) -> str:
        """The address a valid, unused link signs in; the link is spent. Raises BadSeal."""
        fields = unseal(self.sessions.secret, LINK_PURPOSE, token, now=self.clock())
        address, nonce = fields.get("a"), fields.get("n")
        if not isinstance(address, str) or not isinstance(nonce, str):
            raise BadSeal("wrong fields")
        try:
            await self.quarantine.write(
                lambda conn: conn.execute(
                    link_uses.insert().values(nonce=nonce, used_at=self.clock())
                )
            )
        except IntegrityError:
            raise BadSeal("already used") from None
        return address


def create_router(signin: SignIn) -> APIRouter:
    router = APIRouter(prefix="/my", include_in_schema=False)
    sessions = signin.sessions

    def form_page(
        request: Request, session: Session, template: str, status: int = 200, **context: object
    ) -> HTMLResponse:
        response = render.page(request, template, status, csrf=sessions.csrf(session), **context)
        sessions.keep(request, response, session)
        return response

    def client(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    @router.get("/signin")
    async def signin_form(request: Request) -> Response:
        return form_page(request, sessions.current(request), "signin.html")

    @router.post("/signin")
    async def ask_for_link(
        request: Request, email: str = Form(""), csrf: str = Form("")
    ) -> Response:
        session = sessions.current(request)
        if not sessions.csrf_ok(session, csrf):
            return render.error(
                request, 403, "This form has expired", "Reload the sign-in page and try again."
            )
        address = email.strip().lower()
        if "@" not in address or not domain_of(address) or len(address) > 320:
            return form_page(
                request,
                session,
                "signin.html",
                422,
                email=email,
                problem="Enter the email address your mail is sent to.",
            )
        if not signin.per_client.allow(client(request)):
            return render.error(
                request,
                429,
                "Too many sign-in requests",
                "Wait a few minutes, then ask for a new link.",
            )
        if signin.per_address.allow(address):
            task = asyncio.create_task(signin.mail_link(address))
            signin.tasks.add(task)
            task.add_done_callback(signin.tasks.discard)
        return form_page(request, session, "link_sent.html", email=address)

    @router.get("/signin/{token}")
    async def confirm_link(request: Request, token: str) -> Response:
        return form_page(request, sessions.current(request), "signin_confirm.html", token=token)

    @router.post("/signin/{token}")
    async def use_link(request: Request, token: str, csrf: str = Form("")) -> Response:
        session = sessions.current(request)
        if not sessions.csrf_ok(session, csrf):
            return render.error(
                request, 403, "This form has expired", "Open the link from your mail again."
            )
        try:
            address = await signin.spend(token)
        except BadSeal:
            return render.error(
                request,
                400,
                "This sign-in link cannot be used",
                "It has expired or was already used. Ask for a new one.",
                retry=True,
            )
        return _signed_in(request, sessions, sessions.new(Kind.USER, address))

    @router.post("/admin-signin")
    async def admin_signin(
        request: Request, token: str = Form(""), csrf: str = Form("")
    ) -> Response:
        session = sessions.current(request)
        if not sessions.csrf_ok(session, csrf):
            return render.error(
                request, 403, "This form has expired", "Reload the sign-in page and try again."
            )
        if not signin.per_client.allow(client(request)):
            return render.error(
                request, 429, "Too many sign-in attempts", "Wait a few minutes, then try again."
            )
        token = token.strip()
        found = await signin.quarantine.read(tokens.authenticate, token)
        if found is None:
            return form_page(
                request,
                session,
                "signin.html",
                401,
                admin_problem="That token is unknown or revoked.",
            )
        return _signed_in(request, sessions, sessions.new(Kind.ADMIN, tokens.hash_of(token)))

    @router.post("/signout")
    async def signout(request: Request, csrf: str = Form("")) -> Response:
        session = sessions.current(request)
        if not sessions.csrf_ok(session, csrf):
            return render.error(request, 403, "This form has expired", "Reload and try again.")
        response = RedirectResponse("/my/signin", status_code=303)
        sessions.keep(request, response, sessions.new(Kind.ANONYMOUS, ""))
        return response

    return router


def _signed_in(request: Request, sessions: Sessions, session: Session) -> Response:
    response = RedirectResponse("/my/", status_code=303)
    sessions.keep(request, response, session)
    return response
