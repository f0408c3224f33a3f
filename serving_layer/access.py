"""Who is asking, and what they may see: one access level per route and Socket.IO event,
checked in one place before any of them runs.

A caller is a logged-in browser (the session cookie) or a script (``Authorization: Bearer``
with an API token). Levels:

- ``PUBLIC``: anyone (health, the API contract, logging in);
- ``USER``: any caller; ``SESSION``: a logged-in browser only (passwords, second factor,
  tokens: a token cannot mint tokens or change a password);
- ``SITE_VIEWER`` / ``SITE_ANALYST``: a member of the site in the path with at least that
  role, or an admin; ``SITE_ADMIN``: an admin, on a site;
- ``ADMIN``: admins.

A site the caller may not see answers exactly as a site that does not exist (404, the same
body), so no one learns which sites exist. A read-only token is refused every change (403).
A user an admin requires to use a second factor reaches only their own profile until they
have set one up.
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask, current_app, g, request, session

from serving_layer.errors import ApiError
from serving_layer.recent import Recent
from store.accounts import ANALYST, VIEWER, Accounts, Token, User

F = TypeVar("F", bound=Callable[..., Any])
ADMIN_ROLE = "admin"
_RANK = {VIEWER: 1, ANALYST: 2, ADMIN_ROLE: 3}
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Access(enum.Enum):
    PUBLIC = "public"
    USER = "user"
    SESSION = "session"
    SITE_VIEWER = "site:viewer"
    SITE_ANALYST = "site:analyst"
    SITE_ADMIN = "site:admin"
    ADMIN = "admin"

    @property
    def site_role(self) -> str | None:
        """The least role on the path's site this level needs, if it is about a site."""
        return {Access.SITE_VIEWER: VIEWER, Access.SITE_ANALYST: ANALYST, Access.SITE_ADMIN: ADMIN_ROLE}.get(self)


@dataclass
class Principal:
    """A caller: a user, through a login session or one of their API tokens."""
    user: User
    token: Token | None = None
    session_id: str | None = None
    _memberships: dict[str, str] | None = field(default=None, repr=False)

    def role(self, accounts: Accounts, site: str) -> str | None:
        """The caller's role on ``site`` (admin, analyst, viewer), or None if they may not see it."""
        if self.token is not None and self.token.site is not None and self.token.site != site:
            return None
        if self.user.is_admin:
            return ADMIN_ROLE
        if self._memberships is None:
            self._memberships = accounts.memberships(self.user.email)
        return self._memberships.get(site)

    def sites(self, accounts: Accounts, all_sites: list[str]) -> dict[str, str]:
        """The sites the caller may see, with their role on each."""
        roles = {s: self.role(accounts, s) for s in all_sites}
        return {s: r for s, r in roles.items() if r is not None}


def unknown_site(site: str) -> ApiError:
    """The one answer for a site that does not exist and for a site the caller may not see."""
    return ApiError(404, f"unknown site {site!r}")


def _unauthenticated(message: str = "log in, or send an API token as 'Authorization: Bearer <token>'") -> ApiError:
    return ApiError(401, message)


def _accounts() -> Accounts:
    return current_app.extensions["parallax.store"]().accounts


def principal_of(authorization: str | None, session_email: str, session_id: str | None,
                 accounts: Accounts) -> Principal | None:
    """The caller of a request (or a socket) from its Authorization header and its session.
    A Bearer header is the only credential it is checked for: a bad token is refused, not
    replaced by a cookie that came along with it."""
    if authorization:
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise _unauthenticated("the Authorization header must be 'Bearer <API token>'")
        owner = accounts.token_owner(secret.strip())
        if owner is None:
            raise _unauthenticated("this API token is not valid (revoked, or never issued)")
        return Principal(owner[0], token=owner[1])
    if session_email:
        user = accounts.user(session_email)
        return Principal(user, session_id=session_id) if user else None
    return None


def callers() -> Recent:
    """Who each token or session was found to be, kept ``auth_cache_s`` (1 s) in this
    process: a script or a dashboard asking many times a second is not looked up each time.
    An account change made through this process forgets them all at once
    (``forget_callers``); one made elsewhere (another process, the CLI) is seen within the
    second."""
    return current_app.extensions["parallax.callers"]


def forget_callers() -> None:
    callers().forget()


def current_principal() -> Principal | None:
    """The caller of this request, found once per request."""
    if "principal" not in g:
        authorization = request.headers.get("Authorization")
        email, sid = getattr(session, "email", ""), getattr(session, "sid", None)
        if not authorization and not email:
            g.principal = None
        else:
            key = ("bearer", authorization) if authorization else ("session", sid, email)
            g.principal = callers().get(key, lambda: principal_of(authorization, email, sid, _accounts()))
    return g.principal


def require_principal() -> Principal:
    who = current_principal()
    if who is None:
        raise _unauthenticated()
    return who


def check(level: Access, who: Principal | None, accounts: Accounts, *, site: str | None = None,
          writes: bool = False, setup_ok: bool = False) -> str | None:
    """Refuse (``ApiError``) unless ``who`` may use a route or event of ``level``; the
    caller's role on ``site`` when the level is about one. ``writes``: it changes something."""
    if level is Access.PUBLIC:
        return None
    if who is None:
        raise _unauthenticated()
    if who.user.needs_totp_setup and not setup_ok:
        raise ApiError(403, "an admin requires a second factor on this account: set one up first "
                            "(POST /api/v1/me/totp, then POST /api/v1/me/totp/confirm)")
    if level is Access.SESSION and who.token is not None:
        raise ApiError(403, "an API token cannot do this: log in with a password in a browser")
    role = None
    needed = level.site_role
    if needed is not None:
        if site is None:
            raise ApiError(500, "a site route without a site")  # a routing mistake, caught by the tests
        role = who.role(accounts, site)
        if role is None:
            raise unknown_site(site)
        if _RANK[role] < _RANK[needed]:
            raise ApiError(403, f"your role on site {site!r} is {role}; this needs {needed}")
    if level is Access.ADMIN:
        if not who.user.is_admin:
            raise ApiError(403, "only admins may do this")
        if who.token is not None and who.token.site is not None:
            raise ApiError(403, f"this API token is limited to site {who.token.site!r}")
    if writes and who.token is not None and who.token.read_only:
        raise ApiError(403, "this API token is read-only")
    return role


def requires(level: Access, *, setup_ok: bool = False, uses_store: bool = True) -> Callable[[F], F]:
    """Declare a route's access level (checked by ``enforce`` before the route runs).
    ``setup_ok``: reachable by a user who must still set up a second factor; ``uses_store``:
    it needs Cassandra (else it answers while Cassandra is away)."""

    def mark(fn: F) -> F:
        fn.parallax_access = level  # type: ignore[attr-defined]
        fn.parallax_setup_ok = setup_ok  # type: ignore[attr-defined]
        fn.parallax_uses_store = uses_store  # type: ignore[attr-defined]
        return fn

    return mark


def level_of(view: Callable[..., Any]) -> Access | None:
    return getattr(view, "parallax_access", None)


def enforce() -> None:
    """Before every request: the route's declared level, for this caller and the path's site."""
    if request.endpoint is None:
        return  # no route matched: a 404 or 405 follows
    view = current_app.view_functions[request.endpoint]
    unavailable = getattr(session, "unavailable", None)
    if unavailable is not None and getattr(view, "parallax_uses_store", True):
        raise unavailable  # the session could not be read: 503, like any read of Cassandra
    level = level_of(view)
    if level is None:
        raise ApiError(500, f"route {request.endpoint} declares no access level")
    g.site_role = None
    if level is Access.PUBLIC:
        return
    g.site_role = check(level, current_principal(), _accounts(),
                        site=(request.view_args or {}).get("site"), writes=request.method not in READ_METHODS,
                        setup_ok=getattr(view, "parallax_setup_ok", False))


def check_routes(app: Flask) -> None:
    """Every route declares its level, and every site level has a ``<site>`` in its path:
    a new route cannot forget its check (the app refuses to start)."""
    for rule in app.url_map.iter_rules():
        level = level_of(app.view_functions[rule.endpoint])
        if level is None:
            raise RuntimeError(f"route {rule.rule} ({rule.endpoint}) declares no access level: use @requires")
        if level.site_role and "site" not in rule.arguments:
            raise RuntimeError(f"route {rule.rule} has a site access level but no <site> in its path")
