"""What admins manage: users (a generated password is shown once; an admin can require a
second factor), who may see each site, as what, and erasure requests."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, Field

from infra.airflow_env import ERASURE_DAG, trigger_dag_soon
from schemas import SITE_ID
from serving_layer.access import Access, require_principal
from serving_layer.api import API_PREFIX, Body, Query, endpoint, no_content
from serving_layer.errors import ApiError
from serving_layer.params import site_zone, store
from store.accounts import ROLES, AccountError, User, generate_password
from store.erasures import MAX_NOTE, MAX_VISITOR_IDS, STATUSES, VISITOR_ID, ErasureError

bp = Blueprint("admin", __name__, url_prefix=API_PREFIX)


class UserInfo(BaseModel):
    email: str
    name: str
    is_admin: bool
    totp_enabled: bool
    totp_required: bool
    sites: dict[str, str]


class UserList(BaseModel):
    users: list[UserInfo]


class NewUser(Body):
    email: str = Field(max_length=320)
    name: str = Field("", max_length=100)
    is_admin: bool = False
    password: str | None = Field(None, max_length=1024, description="omit it to have one generated and shown once")


class NewUserAnswer(BaseModel):
    user: UserInfo
    password: str | None = Field(description="the generated password, shown this once")


class UserChange(Body):
    name: str | None = Field(None, max_length=100)
    is_admin: bool | None = None
    require_totp: bool | None = Field(None, description="the user must set up a second factor before anything else")


class Membership(Body):
    role: Literal["analyst", "viewer"]


class MemberList(BaseModel):
    members: dict[str, str]


def _user_info(u: User) -> UserInfo:
    return UserInfo(email=u.email, name=u.name, is_admin=u.is_admin, totp_enabled=u.totp_enabled,
                    totp_required=u.totp_required, sites=store().accounts.memberships(u.email))


def _user(email: str) -> User:
    user = store().accounts.user(email)
    if user is None:
        raise ApiError(404, f"no user {email!r}")
    return user


@endpoint(bp, "GET", "/users", Access.ADMIN, ok=UserList, tags=["admin"])
def list_users() -> Response:
    return jsonify(users=[_user_info(u).model_dump() for u in store().accounts.users()])


@endpoint(bp, "POST", "/users", Access.ADMIN, body=NewUser, ok=NewUserAnswer, ok_status=201, errors=(409,),
          tags=["admin"])
def add_user() -> tuple[Response, int]:
    """Add a user; without a password, one is generated and shown this once."""
    body: NewUser = request.context.json  # type: ignore[attr-defined]
    password = body.password or generate_password()
    accounts = store().accounts
    if accounts.user(body.email) is not None:
        raise ApiError(409, f"a user {body.email.strip().lower()} exists already")
    try:
        user = accounts.add_user(body.email, password, name=body.name, is_admin=body.is_admin)
    except AccountError as exc:
        status = 409 if "exists already" in str(exc) else 400
        raise ApiError(status, str(exc)) from None
    return jsonify(user=_user_info(user).model_dump(), password=None if body.password else password), 201


@endpoint(bp, "PATCH", "/users/<email>", Access.ADMIN, body=UserChange, ok=UserInfo, tags=["admin"])
def change_user(email: str) -> Response:
    """Rename a user, make them an admin or not, require a second factor of them."""
    body: UserChange = request.context.json  # type: ignore[attr-defined]
    user, accounts = _user(email), store().accounts
    if body.is_admin is False and user.email == require_principal().user.email:
        raise ApiError(400, "you cannot take your own admin role away: ask another admin", parameter="is_admin")
    if body.name is not None:
        accounts.update_profile(user.email, name=body.name)
    if body.is_admin is not None:
        accounts.set_admin(user.email, body.is_admin)
    if body.require_totp is not None:
        accounts.require_totp(user.email, body.require_totp)
    return jsonify(_user_info(_user(user.email)).model_dump())


@endpoint(bp, "DELETE", "/users/<email>", Access.ADMIN, ok=None, ok_status=204, tags=["admin"])
def remove_user(email: str) -> Response:
    """Remove a user: their sessions, tokens and memberships end at once."""
    user = _user(email)
    if user.email == require_principal().user.email:
        raise ApiError(400, "you cannot remove your own account: ask another admin")
    store().accounts.remove_user(user.email)
    return no_content()


@endpoint(bp, "GET", "/sites/<site>/members", Access.SITE_ADMIN, ok=MemberList, tags=["admin"])
def list_members(site: str) -> Response:
    site_zone(site)
    return jsonify(members=dict(sorted(store().accounts.members(site).items())))


@endpoint(bp, "PUT", "/sites/<site>/members/<email>", Access.SITE_ADMIN, body=Membership, ok=MemberList,
          tags=["admin"])
def grant(site: str, email: str) -> Response:
    """Make a user an analyst or viewer of the site (replacing their role there)."""
    body: Membership = request.context.json  # type: ignore[attr-defined]
    site_zone(site)
    user = _user(email)
    assert body.role in ROLES
    store().accounts.grant(user.email, site, body.role)
    return jsonify(members=dict(sorted(store().accounts.members(site).items())))


@endpoint(bp, "DELETE", "/sites/<site>/members/<email>", Access.SITE_ADMIN, ok=None, ok_status=204, tags=["admin"])
def revoke(site: str, email: str) -> Response:
    """End a user's membership of the site: their access ends at once, sockets within seconds."""
    site_zone(site)
    if not store().accounts.revoke(email, site):
        raise ApiError(404, f"{email!r} is not a member of site {site!r}")
    return no_content()


VisitorId = Annotated[str, Field(pattern=VISITOR_ID.pattern)]


class NewErasure(Body):
    visitor_ids: list[VisitorId] = Field(min_length=1, max_length=MAX_VISITOR_IDS,
                                         description="the data subject's visitor ids (1-64 letters, digits, '_' "
                                                     "or '-' each)")
    site: str | None = Field(None, pattern=SITE_ID.pattern, description="only this site's events; default: every "
                                                                         "site's")
    note: str = Field("", max_length=MAX_NOTE, description="why, for the record (a ticket, a reference)")


class ErasureInfo(BaseModel):
    id: str
    requested_by: str
    requested_at: str
    visitor_ids: list[str]
    site: str | None
    note: str
    status: Literal[STATUSES]  # type: ignore[valid-type]
    run_id: str | None = Field(description="the Airflow run that took it last")
    attempts: int
    started_at: str | None
    site_days: dict[str, list[str]] = Field(description="per site, the days (its zone) the visitors' events were on")
    events_removed: int | None = Field(description="events removed from the master dataset (archived copies "
                                                   "included)")
    delete_version: int | None = Field(description="the master dataset's version its last delete committed")
    recomputed: dict[str, list[str]] = Field(description="per site, the days whose batch views were recomputed")
    waiting: dict[str, list[str]] = Field(description="per site, the days not ended then: the nightly run computes "
                                                      "them without the events")
    finished_at: str | None
    error: str | None


class ErasureList(BaseModel):
    erasures: list[ErasureInfo]


class ErasureQuery(Query):
    status: Literal[STATUSES] | None = None  # type: ignore[valid-type]
    limit: int = Field(100, ge=1, le=1000)


@endpoint(bp, "POST", "/admin/erasures", Access.ADMIN, body=NewErasure, ok=ErasureInfo, ok_status=202,
          tags=["admin"])
def request_erasure() -> tuple[Response, int]:
    """Ask for visitors' events to be erased: the request is recorded (pending), then a run
    of the Airflow DAG `parallax_erasure` is triggered for it (if Airflow cannot be reached,
    the DAG's schedule takes the request within five minutes); follow it at
    `GET /admin/erasures/ID`."""
    body: NewErasure = request.context.json  # type: ignore[attr-defined]
    s = store()
    if body.site is not None and s.site_zone(body.site) is None:
        raise ApiError(400, f"no such site: {body.site!r}", parameter="site")
    try:
        made = s.erasures.request(body.visitor_ids, require_principal().user.email, datetime.now(timezone.utc),
                                  site=body.site, note=body.note)
    except ErasureError as exc:
        raise ApiError(400, str(exc)) from None
    trigger_dag_soon(current_app.extensions["parallax.settings"], ERASURE_DAG, {"request_id": made.id},
                     f"erasure request {made.id}")
    return jsonify(made.as_json()), 202


@endpoint(bp, "GET", "/admin/erasures", Access.ADMIN, query=ErasureQuery, ok=ErasureList, tags=["admin"])
def list_erasures() -> Response:
    """The erasure requests, newest first."""
    q: ErasureQuery = request.context.query  # type: ignore[attr-defined]
    found = [r for r in store().erasures.all() if q.status is None or r.status == q.status]
    return jsonify(erasures=[r.as_json() for r in found[:q.limit]])


@endpoint(bp, "GET", "/admin/erasures/<request_id>", Access.ADMIN, ok=ErasureInfo, tags=["admin"])
def erasure_detail(request_id: str) -> Response:
    """One erasure request: its status, the events removed, the site-days recomputed."""
    found = store().erasures.get(request_id) if len(request_id) <= 64 else None
    if found is None:
        raise ApiError(404, f"no erasure request {request_id!r}")
    return jsonify(found.as_json())
