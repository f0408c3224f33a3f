"""Sites as tenants: the sites a caller may see, a site's settings and tracker snippet,
registering a site (admins), and its goals (analysts change them)."""
from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel, Field

from serving_layer.access import Access, require_principal, unknown_site
from serving_layer.api import API_PREFIX, Body, endpoint, no_content
from serving_layer.errors import ApiError
from serving_layer.params import store
from views.goals import Goal

bp = Blueprint("sites", __name__, url_prefix=API_PREFIX)


class SiteInfo(BaseModel):
    site: str
    timezone: str
    domains: list[str]
    role: str = Field(description="the caller's role: admin, analyst or viewer")


class SiteList(BaseModel):
    sites: list[SiteInfo]


class GoalInfo(BaseModel):
    name: str
    kind: Literal["page", "event"]
    pattern: str


class SiteDetail(SiteInfo):
    goals: list[GoalInfo]
    tracker_snippet: str = Field(description="the script tag to paste into the site's pages")


class NewSite(Body):
    site: str = Field(min_length=1, max_length=63, description="1-63 lowercase letters, digits, '.', '_' or '-'")
    domains: list[str] = Field(min_length=1, max_length=50)
    timezone: str = Field("UTC", max_length=64, description="an IANA time zone, e.g. Europe/Paris")


class SiteChange(Body):
    domains: list[str] = Field(min_length=1, max_length=50, description="the hosts its events may come from")


class NewGoal(Body):
    name: str = Field(min_length=1, max_length=64)
    page: str | None = Field(None, max_length=256, description="a path pattern: * within a segment, ** across")
    event: str | None = Field(None, max_length=64, description="a custom event's name")


class GoalList(BaseModel):
    goals: list[GoalInfo]


def _site_info(row: Any, role: str) -> SiteInfo:
    return SiteInfo(site=row.site, timezone=row.timezone or "UTC", domains=sorted(row.domains or ()), role=role)


def _site_row(site: str) -> Any:
    row = store().registry.site(site)
    if row is None:
        raise unknown_site(site)
    return row


def _goals(site: str) -> list[GoalInfo]:
    return [GoalInfo(name=x.name, kind=x.kind, pattern=x.pattern)  # type: ignore[arg-type]
            for x in store().registry.site_goals(site)]


@endpoint(bp, "GET", "/sites", Access.USER, ok=SiteList, tags=["sites"])
def list_sites() -> Response:
    """The sites the caller may see (and no other), with their role on each."""
    who, s = require_principal(), store()
    rows = s.registry.sites()
    roles = who.sites(s.accounts, [r.site for r in rows])
    return jsonify(sites=[_site_info(r, roles[r.site]).model_dump() for r in rows if r.site in roles])


@endpoint(bp, "POST", "/sites", Access.ADMIN, body=NewSite, ok=SiteInfo, ok_status=201, errors=(409,),
          tags=["sites"])
def add_site() -> tuple[Response, int]:
    """Register a site (admins). It belongs to no one until an admin grants memberships."""
    body: NewSite = request.context.json  # type: ignore[attr-defined]
    registry = store().registry
    if registry.site_zone(body.site) is not None:
        raise ApiError(409, f"site {body.site!r} exists already")
    try:
        registry.add_site(body.site, body.domains, body.timezone)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return jsonify(_site_info(_site_row(body.site), "admin").model_dump()), 201


@endpoint(bp, "GET", "/sites/<site>", Access.SITE_VIEWER, ok=SiteDetail, tags=["sites"])
def site_detail(site: str) -> Response:
    """A site's settings, goals and the tracker snippet to paste into its pages."""
    return _detail(site)


def _detail(site: str) -> Response:
    row = _site_row(site)
    collector = current_app.extensions["parallax.settings"].collector.url
    snippet = f'<script defer data-site="{site}" src="{collector}/js/tracker.js"></script>'
    info = _site_info(row, g.site_role)
    return jsonify(SiteDetail(**info.model_dump(), goals=_goals(site), tracker_snippet=snippet).model_dump())


@endpoint(bp, "PATCH", "/sites/<site>", Access.SITE_ADMIN, body=SiteChange, ok=SiteDetail, tags=["sites"])
def change_site(site: str) -> Response:
    """Change the domains a site's events may come from (admins). Its time zone is fixed
    when it is registered: the batch views of its past days follow it."""
    body: SiteChange = request.context.json  # type: ignore[attr-defined]
    _site_row(site)
    try:
        store().registry.set_domains(site, body.domains)
    except ValueError as exc:
        raise ApiError(400, str(exc), parameter="domains") from None
    return _detail(site)


@endpoint(bp, "GET", "/sites/<site>/goals", Access.SITE_VIEWER, ok=GoalList, tags=["sites"])
def list_goals(site: str) -> Response:
    _site_row(site)
    return jsonify(goals=[x.model_dump() for x in _goals(site)])


@endpoint(bp, "POST", "/sites/<site>/goals", Access.SITE_ANALYST, body=NewGoal, ok=GoalInfo, ok_status=201,
          tags=["sites"])
def add_goal(site: str) -> tuple[Response, int]:
    """Add or replace a goal: a page pattern or a custom event's name (exactly one). The
    speed layer applies it within seconds; re-run past days to apply it to them."""
    body: NewGoal = request.context.json  # type: ignore[attr-defined]
    _site_row(site)
    if (body.page is None) == (body.event is None):
        raise ApiError(400, "give exactly one of 'page' (a path pattern) or 'event' (an event name)")
    goal = Goal(site, body.name, "page" if body.page is not None else "event", body.page or body.event or "")
    try:
        store().registry.add_goal(goal)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return jsonify(name=goal.name, kind=goal.kind, pattern=goal.pattern), 201


@endpoint(bp, "DELETE", "/sites/<site>/goals/<path:name>", Access.SITE_ANALYST, ok=None, ok_status=204, tags=["sites"])
def remove_goal(site: str, name: str) -> Response:
    if not store().registry.remove_goal(site, name):
        raise ApiError(404, f"site {site!r} has no goal {name!r}")
    return no_content()
