"""The held-mail pages: the list with search and filters, one message, its safe preview."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from filters.mail import Mail
from quarantine import requests
from quarantine.held import Filters
from quarantine.service import NotFound
from quarantine.views import detail_of
from quarantine.web import render
from quarantine.web.access import Access

PAGE_SIZE: Final = 50
REASONS: Final = ("spam", "virus", "content")
STATES: Final = ("held", "released", "deleted")
DONE: Final = {
    "released": "Released: the message is on its way.",
    "deleted": "Deleted.",
    "allowed": "Sender allowed: their next mail is delivered.",
    "blocked": "Sender blocked.",
    "requested": "Release requested: an operator decides and the message follows if approved.",
    "settings": "Digest settings saved.",
    "bulk": "Done for the selected messages.",
    "approved": "Release approved: the message is on its way.",
    "refused": "Release refused.",
}
SHOWN_HEADERS: Final = ("from", "to", "cc", "reply-to", "subject", "date", "message-id")


def _day(value: str, field: str, problems: list[str]) -> float | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        problems.append(f"{field}: use a date like 2026-11-30")
        return None


def create_router(access: Access) -> APIRouter:
    router = APIRouter(prefix="/my", include_in_schema=False)
    quarantine = access.quarantine

    @router.get("/")
    async def held_list(request: Request) -> Response:
        visit = await access.visit(request)
        if visit is None:
            return RedirectResponse("/my/signin", status_code=303)
        viewer = visit.viewer
        q = request.query_params
        problems: list[str] = []
        search = {
            k: q.get(k, "").strip()[:200]
            for k in ("sender", "subject", "reason", "since", "until", "recipient", "state")
        }
        if search["reason"] not in ("", *REASONS):
            problems.append("reason: choose spam, virus or content")
            search["reason"] = ""
        if search["state"] not in ("", *STATES):
            problems.append("state: choose held, released or deleted")
            search["state"] = ""
        since = _day(search["since"], "from", problems)
        until = _day(search["until"], "to", problems)
        recipient = viewer.address or search["recipient"] or None
        filters = Filters(
            recipient=recipient,
            sender=search["sender"] or None,
            subject=search["subject"] or None,
            since=since,
            until=until + timedelta(days=1).total_seconds() if until is not None else None,
            kind=search["reason"] or None,
            state=search["state"] or "held",
        )
        try:
            items, cursor = await quarantine.find(
                viewer.principal, filters, q.get("cursor") or None, PAGE_SIZE
            )
        except ValueError:
            problems.append("that page link is not valid; showing the first page")
            items, cursor = await quarantine.find(viewer.principal, filters, None, PAGE_SIZE)
        status = 422 if problems else 200
        return render.page(
            request,
            "list.html",
            status,
            visit=visit,
            items=items,
            search=search,
            next_cursor=cursor,
            problems=problems,
            reasons=REASONS,
            states=STATES,
            done=DONE.get(q.get("done", "")),
        )

    @router.get("/messages/{held_id}")
    async def message(request: Request, held_id: str) -> Response:
        visit = await access.visit(request)
        if visit is None:
            return RedirectResponse("/my/signin", status_code=303)
        try:
            found = await access.message(visit.viewer, held_id)
        except NotFound:
            return render.error(
                request, 404, "No such message", "It may have been released, deleted or expired."
            )
        detail = detail_of(found)
        headers = [(k, v) for k, v in detail["headers"] if k.lower() in SHOWN_HEADERS]
        plain = [p["text"] for p in detail["text_parts"] if p["content_type"] != "text/html"]
        has_html = any(p["content_type"] == "text/html" for p in detail["text_parts"])
        pending = await quarantine.read(requests.pending_for, found.summary.id)
        return render.page(
            request,
            "message.html",
            visit=visit,
            m=found.summary,
            hits=found.hits,
            headers=headers,
            plain=plain,
            has_html=has_html,
            attachments=detail["attachments"],
            pending=pending,
            done=DONE.get(request.query_params.get("done", "")),
        )

    @router.get("/messages/{held_id}/preview")
    async def preview(request: Request, held_id: str) -> Response:
        """The sanitised HTML body, for the sandboxed frame on the message page only."""
        visit = await access.visit(request)
        if visit is None:
            return PlainTextResponse("signed out", status_code=401)
        try:
            found = await access.message(visit.viewer, held_id)
        except NotFound:
            return PlainTextResponse("no such message", status_code=404)
        return render.preview(Mail(found.raw).html)

    @router.get("/static/style.css")
    async def stylesheet() -> Response:
        return Response(
            render.stylesheet(), media_type="text/css", headers={"Cache-Control": "max-age=3600"}
        )

    @router.get("")
    async def bare() -> Response:
        return RedirectResponse("/my/", status_code=308)

    return router
