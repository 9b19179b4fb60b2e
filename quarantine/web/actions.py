"""What a person does to held mail from the pages: release, delete, allow or block the sender,
ask for a virus release, act on many at once, and choose how digests come.

Every post carries the session's CSRF token. A user acts for themselves
only: a release goes to their own address, a sender is listed for them; an
administrator releases to the original recipients and may list a sender
for the recipients or for the whole domain.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from filters.policy import Lists
from quarantine import accounts
from quarantine.service import NotFound, Refused
from quarantine.web import render
from quarantine.web.access import Access, Visit
from quarantine.web.mailbox import DONE

MAX_BULK: Final = 200
LISTS: Final = {"allow": ("whitelist", "allowed"), "block": ("blacklist", "blocked")}


def create_router(access: Access) -> APIRouter:
    router = APIRouter(prefix="/my", include_in_schema=False)
    quarantine = access.quarantine

    async def act(visit: Visit, held_id: str, action: str, scope: str, reason: str) -> str:
        """Carry out one action; returns the ``done`` code. Raises NotFound, Refused, ValueError."""
        viewer = visit.viewer
        found = await access.message(viewer, held_id)
        mine = [viewer.address] if viewer.address else None
        if action == "release":
            await quarantine.release(viewer.principal, held_id, mine)
            return "released"
        if action == "delete":
            await quarantine.delete(viewer.principal, held_id)
            return "deleted"
        if action == "request":
            if not reason.strip():
                raise Refused("say why you need this message: an operator reads it", 422)
            await quarantine.request_release(viewer.principal, held_id, reason.strip()[:2000], mine)
            return "requested"
        kind, done = LISTS[action]
        if viewer.address is None:  # an administrator: the recipients, or the whole domain
            chosen = "domain" if scope == "domain" else "user"
            await quarantine.sender_to_list(viewer.principal, held_id, kind, chosen)
            return done
        sender = Lists(whitelist=[found.summary.sender.strip("<>")]).whitelist[0]
        await quarantine.add_entry(
            viewer.principal,
            domain=found.summary.domain,
            scope="user",
            owner=viewer.address,
            kind=kind,
            value=sender,
        )
        return done

    @router.post("/messages/{held_id}/{action}")
    async def one(
        request: Request,
        held_id: str,
        action: str,
        csrf: str = Form(""),
        scope: str = Form("user"),
        reason: str = Form(""),
    ) -> Response:
        visit = await access.posted(request, csrf)
        if not isinstance(visit, Visit):
            return visit
        if action not in ("release", "delete", "request", *LISTS):
            return render.error(request, 404, "There is no such action")
        try:
            done = await act(visit, held_id, action, scope, reason)
        except NotFound:
            return render.error(
                request, 404, "No such message", "It may have been released, deleted or expired."
            )
        except Refused as exc:
            return render.error(
                request, exc.status, "Nothing was done", str(exc), back=f"/my/messages/{held_id}"
            )
        except ValueError as exc:
            return render.error(request, 422, "Nothing was done", str(exc))
        target = "/my/" if action in ("release", "delete") else f"/my/messages/{held_id}"
        return RedirectResponse(f"{target}?done={done}", status_code=303)

    @router.post("/bulk")
    async def bulk(request: Request) -> Response:
        form = await request.form()
        visit = await access.posted(request, str(form.get("csrf", "")))
        if not isinstance(visit, Visit):
            return visit
        action = str(form.get("action", ""))
        ids = [str(i) for i in form.getlist("ids")][:MAX_BULK]
        if action not in ("release", "delete") or not ids:
            return render.error(
                request,
                422,
                "Nothing was done",
                "Tick at least one message, then release or delete.",
            )
        failed = []
        for held_id in dict.fromkeys(ids):
            try:
                await act(visit, held_id, action, "user", "")
            except (NotFound, Refused, ValueError) as exc:
                failed.append((held_id, str(exc) if not isinstance(exc, NotFound) else "not found"))
        if failed:
            return render.page(
                request,
                "bulk_failed.html",
                207 if len(failed) < len(ids) else 409,
                failed=failed,
                done=len(ids) - len(failed),
            )
        return RedirectResponse("/my/?done=bulk", status_code=303)

    @router.get("/settings")
    async def settings(request: Request) -> Response:
        visit = await access.visit(request)
        if visit is None:
            return RedirectResponse("/my/signin", status_code=303)
        if visit.viewer.address is None:
            return RedirectResponse("/my/admin", status_code=303)
        account = await quarantine.read(accounts.get, visit.viewer.address)
        done = DONE.get(request.query_params.get("done", ""))
        return render.page(request, "settings.html", visit=visit, account=account, done=done)

    @router.post("/settings")
    async def save_settings(
        request: Request,
        csrf: str = Form(""),
        notify: str = Form(""),
        every_hours: str = Form(""),
        address: str = Form(""),
    ) -> Response:
        visit = await access.posted(request, csrf)
        if not isinstance(visit, Visit):
            return visit
        target = visit.viewer.address or address.strip().lower()
        account = await quarantine.read(accounts.get, target)
        if account is None or not visit.viewer.principal.sees(account.domain):
            return render.error(request, 404, "No such account")
        hours = int(every_hours) if every_hours.strip().isdigit() else None
        hours = hours if notify == "hours" else None
        if notify not in accounts.MODES or (notify == "hours" and not 1 <= (hours or 0) <= 168):
            return render.error(
                request, 422, "Nothing was saved", "Choose daily, never, or every 1 to 168 hours."
            )
        await quarantine.write(accounts.set_notify, target, notify, hours)
        back = "/my/settings" if visit.viewer.address else "/my/admin"
        return RedirectResponse(f"{back}?done=settings", status_code=303)

    return router
