"""Tenancy, tried the way an attacker would: every REST route of the app's own URL map and
every Socket.IO event, against a live serving process, for every kind of caller.

The expected level of each route is written here, apart from the app's own declaration:
a new route fails this test until someone decides who may use it. Whatever a route
declares, a caller who may not see a site gets exactly the answer of a site that does not
exist, and a caller who has not authenticated (no login, a revoked token, an expired
session) gets 401 everywhere but the public routes.
"""
from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
import requests
import socketio

from infra.settings import Settings
from serving_layer.access import Access
from serving_layer.app import create_app
from serving_layer.live import EVENT_ACCESS
from store.accounts import Accounts, generate_password, new_session_id
from tests.helpers import login

PUBLIC = Access.PUBLIC
# Who may use each route, decided here (the app declares its own; both must agree).
EXPECTED: dict[str, Access] = {
    "auth.csrf_token": PUBLIC, "auth.login": PUBLIC, "auth.logout": PUBLIC,
    "diagnostics.health": PUBLIC, "openapi": PUBLIC,
    "me.profile": Access.USER, "me.update_profile": Access.USER,
    "me.change_password": Access.SESSION, "me.totp_setup": Access.SESSION, "me.totp_confirm": Access.SESSION,
    "me.totp_disable": Access.SESSION, "me.list_tokens": Access.SESSION, "me.create_token": Access.SESSION,
    "me.revoke_token": Access.SESSION,
    "sites.list_sites": Access.USER, "sites.add_site": Access.ADMIN,
    "sites.site_detail": Access.SITE_VIEWER, "sites.change_site": Access.SITE_ADMIN,
    "sites.list_goals": Access.SITE_VIEWER,
    "sites.add_goal": Access.SITE_ANALYST, "sites.remove_goal": Access.SITE_ANALYST,
    "admin.list_users": Access.ADMIN, "admin.add_user": Access.ADMIN, "admin.change_user": Access.ADMIN,
    "admin.remove_user": Access.ADMIN, "admin.list_members": Access.SITE_ADMIN, "admin.grant": Access.SITE_ADMIN,
    "admin.revoke": Access.SITE_ADMIN,
    "admin.request_erasure": Access.ADMIN, "admin.list_erasures": Access.ADMIN, "admin.erasure_detail": Access.ADMIN,
    "reports.report": Access.SITE_VIEWER, "reports.breakdown": Access.SITE_VIEWER,
    "reports.realtime": Access.SITE_VIEWER,
    "exports.export_report": Access.SITE_ANALYST, "exports.export_breakdown": Access.SITE_ANALYST,
    "diagnostics.drift": Access.SITE_VIEWER, "diagnostics.speed_dropped": Access.ADMIN,
    "diagnostics.late_events": Access.SITE_VIEWER, "diagnostics.metrics": Access.ADMIN,
    "alerts.list_rules": Access.SITE_VIEWER, "alerts.rule_detail": Access.SITE_VIEWER,
    "alerts.add_rule": Access.SITE_ANALYST, "alerts.remove_rule": Access.SITE_ANALYST,
    "alerts.rule_deliveries": Access.SITE_ANALYST,
    "notifications.list_notifications": Access.USER, "notifications.unread_count": Access.USER,
    "notifications.mark_read": Access.USER,
    # The dashboard's HTML shell and assets hold no data: every page reads the API.
    "pages.asset": PUBLIC, **{f"pages.shell{suffix}": PUBLIC for suffix in ("", *(f"_{i}" for i in range(1, 9)))},
}
EXPECTED_EVENTS = {"connect": Access.USER, "subscribe": Access.SITE_VIEWER, "unsubscribe": Access.USER}
# What stands for the other parts of a path: things that do not exist, so that an allowed
# caller's change changes nothing.
PATH_VALUES = {"email": "ghost@example.test", "token_id": "0000000000000000", "name": "no-such-goal",
               "rule_id": "000000000000", "rest": "alerts", "request_id": "000000000000"}
RANK = {"viewer": 1, "analyst": 2, "admin": 3}


@dataclass
class Caller:
    name: str
    http: requests.Session
    # Their role on the site under test (None: may not see it), whether they authenticated,
    # and how (a token cannot use SESSION routes), and whether they may change things.
    role: str | None
    authenticated: bool = True
    is_admin: bool = False
    token: str | None = None
    read_only: bool = False
    limited: bool = False  # a token limited to one site (B)
    cookie: str | None = None


def _bearer(token: str) -> requests.Session:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def _user(accounts: Accounts, prefix: str, *, admin: bool = False) -> tuple[str, str]:
    email, password = f"{prefix}-{uuid.uuid4().hex[:8]}@example.test", generate_password()
    accounts.add_user(email, password, is_admin=admin)
    return email, password


@pytest.fixture(scope="module")
def world(stack: Settings, accounts: Accounts, registry, serving_url: str) -> dict:
    """Two sites, A (under test) and B, and a caller of every kind."""
    a, b = (f"mx{tag}-{uuid.uuid4().hex[:8]}" for tag in "ab")
    for site in (a, b):
        registry.add_site(site, ["example.test"], "UTC")
    admin, analyst, viewer, other = (_user(accounts, p, admin=p == "admin")
                                     for p in ("admin", "analyst", "viewer", "other"))
    accounts.grant(analyst[0], a, "analyst")
    accounts.grant(viewer[0], a, "viewer")
    accounts.grant(other[0], b, "viewer")

    def session_of(user: tuple[str, str]) -> requests.Session:
        return login(serving_url, *user)

    revoked = accounts.create_token(analyst[0], "revoked")[1]
    accounts.revoke_token(analyst[0], accounts.token_owner(revoked)[1].id)
    expired_sid = new_session_id()
    now = datetime.now(timezone.utc)
    accounts.save_session(expired_sid, viewer[0], {}, now, now + timedelta(seconds=2))
    expired = requests.Session()
    expired.cookies.set("parallax_session", expired_sid)
    read_only = accounts.create_token(analyst[0], "ro", read_only=True)[1]
    admin_on_b = accounts.create_token(admin[0], "b only", site=b)[1]
    admin_token = accounts.create_token(admin[0], "all")[1]
    sessions = {name: session_of(u) for name, u in
                (("admin", admin), ("analyst", analyst), ("viewer", viewer), ("member of B", other))}
    callers = [
        Caller("admin", sessions["admin"], "admin", is_admin=True, cookie=sessions["admin"].cookies["parallax_session"]),
        Caller("analyst", sessions["analyst"], "analyst", cookie=sessions["analyst"].cookies["parallax_session"]),
        Caller("viewer", sessions["viewer"], "viewer", cookie=sessions["viewer"].cookies["parallax_session"]),
        Caller("member of B", sessions["member of B"], None,
               cookie=sessions["member of B"].cookies["parallax_session"]),
        Caller("admin's token", _bearer(admin_token), "admin", is_admin=True, token=admin_token),
        Caller("analyst's read-only token", _bearer(read_only), "analyst", token=read_only, read_only=True),
        Caller("admin's token for B only", _bearer(admin_on_b), None, is_admin=True, token=admin_on_b, limited=True),
        Caller("no login", requests.Session(), None, authenticated=False),
        Caller("revoked token", _bearer(revoked), None, authenticated=False, token=revoked),
        Caller("expired session", expired, None, authenticated=False, cookie=expired_sid),
    ]
    time.sleep(2.5)  # the expired session's row is gone (its TTL)
    # An unknown site whose id is as long as A's: its answer must be A's, byte for byte.
    unknown = "mxz-" + "0" * (len(a) - 4)
    return {"a": a, "b": b, "unknown": unknown, "callers": callers}


def _rules(stack: Settings) -> list[tuple[str, str, str]]:
    app = create_app(stack, live_feed=False)
    try:
        return sorted((rule.endpoint, method, rule.rule) for rule in app.url_map.iter_rules()
                      for method in rule.methods - {"HEAD", "OPTIONS"})
    finally:
        app.extensions["parallax.store"].close()


def test_every_route_and_event_has_an_expected_level(stack):
    app = create_app(stack, live_feed=False)
    try:
        declared = {rule.endpoint: app.view_functions[rule.endpoint].parallax_access
                    for rule in app.url_map.iter_rules()}
    finally:
        app.extensions["parallax.store"].close()
    assert declared == EXPECTED, "a route was added or changed: decide its level in EXPECTED"
    handlers = set(app.extensions["socketio"].server.handlers["/"]) - {"disconnect"}
    assert handlers == set(EXPECTED_EVENTS) and EVENT_ACCESS == EXPECTED_EVENTS


def _path(rule: str, site: str) -> str:
    path = rule.replace("<site>", site)
    for name, value in PATH_VALUES.items():
        path = re.sub(rf"<(\w+:)?{name}>", value, path)
    assert "<" not in path, f"a part of {rule} the test has no value for: add it to PATH_VALUES"
    return path


def _call(caller: Caller, method: str, url: str) -> requests.Response:
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return caller.http.request(method, url, json=body, timeout=30)


def _expected(level: Access, caller: Caller, method: str) -> str:
    """'ok', 401, 403 or 'hidden' (the unknown site's answer) for ``caller`` on site A."""
    if level is PUBLIC:
        return "ok"
    if not caller.authenticated:
        return "401"
    if level.site_role is not None:
        if caller.role is None:
            return "hidden"
        if RANK[caller.role] < RANK[level.site_role]:
            return "403"
    if level is Access.SESSION and caller.token:
        return "403"
    if level is Access.ADMIN and (not caller.is_admin or caller.limited):
        return "403"
    if method != "GET" and caller.read_only:
        return "403"
    return "ok"


def test_the_access_matrix(stack, serving_url, world):
    a, unknown = world["a"], world["unknown"]
    failures = []
    for endpoint, method, rule in _rules(stack):
        if endpoint == "auth.logout":
            continue  # would end the callers' sessions; it is tried last, below
        level = EXPECTED[endpoint]
        for caller in world["callers"]:
            got = _call(caller, method, f"{serving_url}{_path(rule, a)}")
            want = _expected(level, caller, method)
            where = f"{method} {rule} as {caller.name}: {got.status_code} {got.text[:200]}"
            if want == "ok":
                if got.status_code in (401, 403) or f"unknown site '{a}'" in got.text:
                    failures.append(f"refused, should be allowed: {where}")
            elif want == "hidden":
                twin = _call(caller, method, f"{serving_url}{_path(rule, unknown)}")
                same = (got.status_code == twin.status_code == 404
                        and got.content.replace(a.encode(), b"SITE") == twin.content.replace(unknown.encode(), b"SITE")
                        and sorted(got.headers) == sorted(twin.headers))
                if not same:
                    failures.append(f"not answered as an unknown site ({twin.status_code} {twin.text[:100]}): {where}")
            elif str(got.status_code) != want:
                failures.append(f"expected {want}: {where}")
            if want != "hidden" and caller.role is None and caller.authenticated and a in got.text:
                failures.append(f"site A named to a caller who may not see it: {where}")
    assert not failures, "\n".join(failures)


def test_a_site_one_may_not_see_is_absent_from_every_listing(serving_url, world):
    """The listings (sites, own profile) name only the sites the caller may see."""
    a, b = world["a"], world["b"]
    for caller in world["callers"]:
        if not caller.authenticated:
            continue
        sites = caller.http.get(f"{serving_url}/api/v1/sites", timeout=30).json()["sites"]
        me = caller.http.get(f"{serving_url}/api/v1/me", timeout=30).json()
        names = {s["site"] for s in sites}
        assert (a in names) == (caller.role is not None), caller.name
        assert set(me["sites"]) == names or caller.is_admin, caller.name
        if caller.name == "member of B":
            assert names == {b} and me["sites"] == {b: "viewer"}


def _socket(serving_url: str, caller: Caller) -> tuple[socketio.Client, list]:
    seen: list = []
    sio = socketio.Client(reconnection=False)
    for event in ("subscribed", "error", "unsubscribed", "access_ended", "metrics", "connect_error"):
        sio.on(event, lambda data, event=event: seen.append((event, data)))
    headers = {"Cookie": f"parallax_session={caller.cookie}"} if caller.cookie else {}
    sio.connect(serving_url, transports=["websocket"], wait_timeout=20, headers=headers,
                auth={"token": caller.token} if caller.token else None)
    return sio, seen


def _wait(seen: list, n: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(seen) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def test_socket_events_check_access(serving_url, world):
    a, unknown = world["a"], world["unknown"]
    for caller in world["callers"]:
        if not caller.authenticated:
            refusals: list = []
            sio = socketio.Client(reconnection=False)
            sio.on("connect_error", refusals.append)
            headers = {"Cookie": f"parallax_session={caller.cookie}"} if caller.cookie else {}
            with pytest.raises(socketio.exceptions.ConnectionError):
                sio.connect(serving_url, transports=["websocket"], wait_timeout=20, headers=headers,
                            auth={"token": caller.token} if caller.token else None)
            assert refusals and refusals[0]["data"]["status"] == 401, (caller.name, refusals)
            continue
        sio, seen = _socket(serving_url, caller)
        try:
            sio.emit("subscribe", {"site": a})
            _wait(seen, 1)
            if caller.role is None:
                sio.emit("subscribe", {"site": unknown})
                _wait(seen, 2)
                (e1, d1), (e2, d2) = seen
                assert e1 == e2 == "error" and d1["status"] == d2["status"] == 404, caller.name
                assert d1["error"].replace(a, "SITE") == d2["error"].replace(unknown, "SITE"), caller.name
            else:
                assert seen == [("subscribed", {"site": a})], caller.name
        finally:
            sio.disconnect()


def test_logout_is_public_and_ends_the_session(serving_url, world):
    admin = next(c for c in world["callers"] if c.name == "admin")
    assert admin.http.get(f"{serving_url}/api/v1/me", timeout=30).status_code == 200
    assert admin.http.post(f"{serving_url}/api/v1/auth/logout", timeout=30).status_code == 204
    stale = requests.Session()
    stale.cookies.set("parallax_session", admin.cookie)
    assert stale.get(f"{serving_url}/api/v1/me", timeout=30).status_code == 401
    assert requests.post(f"{serving_url}/api/v1/auth/logout", timeout=30).status_code == 204
