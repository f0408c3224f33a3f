"""The caller's notification centre: their notifications (newest first), the unread count,
marking read. A notification about a site the caller may no longer see is not shown."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, Field

from serving_layer.access import Access, require_principal
from serving_layer.api import API_PREFIX, Body, Query, endpoint
from serving_layer.params import store
from store.notifications import UserNotification

bp = Blueprint("notifications", __name__, url_prefix=f"{API_PREFIX}/me/notifications")


class ListQuery(Query):
    unread: bool = Field(False, description="only those not read yet")
    limit: int = Field(50, ge=1, le=500)


class NotificationInfo(BaseModel):
    id: str
    site: str = Field(description="the site it is about; '' for the whole system")
    kind: str = Field(description="alert.fired, alert.resolved or system.<alarm>")
    title: str
    created_at: str
    link: str = Field(description="the report that shows it")
    values: dict[str, Any]
    read: bool


class NotificationList(BaseModel):
    notifications: list[NotificationInfo]
    unread: int


class UnreadCount(BaseModel):
    unread: int


class MarkRead(Body):
    ids: list[str] | None = Field(None, max_length=500, description="these; all when left out")


def _visible() -> list[UserNotification]:
    who, s = require_principal(), store()
    mine = s.notifications.of_user(who.user.email, limit=500)
    roles = who.sites(s.accounts, sorted({n.site for n in mine if n.site}))
    return [n for n in mine if (n.site in roles) or (not n.site and who.user.is_admin)]


def _info(n: UserNotification) -> dict[str, Any]:
    return NotificationInfo(id=n.id, site=n.site, kind=n.kind, title=n.title, created_at=n.created_at.isoformat(),
                            link=n.link, values=n.values, read=n.read).model_dump()


@endpoint(bp, "GET", "", Access.USER, query=ListQuery, ok=NotificationList, tags=["notifications"])
def list_notifications() -> Response:
    q: ListQuery = request.context.query  # type: ignore[attr-defined]
    visible = _visible()
    shown = [n for n in visible if not (q.unread and n.read)][:q.limit]
    return jsonify(notifications=[_info(n) for n in shown], unread=sum(not n.read for n in visible))


@endpoint(bp, "GET", "/unread", Access.USER, ok=UnreadCount, tags=["notifications"])
def unread_count() -> Response:
    return jsonify(unread=sum(not n.read for n in _visible()))


@endpoint(bp, "POST", "/read", Access.USER, body=MarkRead, ok=UnreadCount, tags=["notifications"])
def mark_read() -> Response:
    """Mark notifications read (all, or the ``ids`` given); answers the unread count left."""
    body: MarkRead = request.context.json  # type: ignore[attr-defined]
    who = require_principal()
    store().notifications.mark_read(who.user.email, set(body.ids) if body.ids is not None else None)
    return jsonify(unread=sum(not n.read for n in _visible()))
