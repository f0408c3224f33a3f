"""Logging in, on the real Cassandra: the session cookie, CSRF, rate limits per address and
per account, the second factor, a password change, and what an admin can require."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pyotp
import pytest
from flask.testing import FlaskClient

from infra.settings import Settings
from serving_layer.app import create_app
from store.accounts import Accounts, generate_password

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def app(stack: Settings):
    """The serving app with the default settings (the limits are the defaults, too)."""
    app = create_app(stack, live_feed=False)
    yield app
    app.extensions["parallax.store"].close()


@pytest.fixture(scope="module")
def tight(stack: Settings):
    """With limits small enough to reach in a test."""
    app = create_app(stack.replace(serving={"login_limit_ip": "8/minute", "login_limit_account": "3/minute"}),
                     live_feed=False)
    yield app
    app.extensions["parallax.store"].close()


def _client(app, address: str | None = None) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address or f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    return client


@pytest.fixture
def browser(app) -> Iterator[FlaskClient]:
    """A browser of its own address (the per-address limit counts each test apart)."""
    yield _client(app)


def _user(accounts: Accounts, **kw) -> str:
    email = f"login-{uuid.uuid4().hex[:10]}@example.test"
    accounts.add_user(email, PASSWORD, **kw)
    return email


def _csrf(client: FlaskClient) -> str:
    return client.get("/api/v1/auth/csrf").get_json()["csrf_token"]


def _login(client: FlaskClient, email: str, password: str = PASSWORD, **extra):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password, **extra},
                       headers={"X-CSRFToken": _csrf(client)})


def test_login_sets_a_server_side_session_cookie(browser, accounts, stack, cassandra):
    email = _user(accounts, name="Ada")
    r = _login(browser, email)
    assert r.status_code == 200 and r.get_json()["user"]["email"] == email
    cookie = r.headers["Set-Cookie"]
    assert "parallax_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over HTTPS the cookie is Secure (below)
    sid = cookie.split("parallax_session=")[1].split(";")[0]
    stored = accounts.load_session(sid)
    assert stored.email == email and "csrf_token" in stored.data
    rows = list(cassandra.execute(f"SELECT id_hash FROM {stack.cassandra.keyspace}.login_sessions_by_user "
                                  "WHERE email=%s", (email,)))
    assert len(rows) == 1 and sid not in rows[0].id_hash  # only the id's hash is stored
    assert browser.get("/api/v1/me").get_json()["name"] == "Ada"

    secure = _client(browser.application)
    r = secure.post("/api/v1/auth/login", base_url="https://localhost",
                    json={"email": email, "password": PASSWORD},
                    headers={"X-CSRFToken": secure.get("/api/v1/auth/csrf", base_url="https://localhost")
                             .get_json()["csrf_token"], "Referer": "https://localhost/"})
    assert r.status_code == 200 and "Secure" in r.headers["Set-Cookie"]


def test_unknown_email_and_wrong_password_answer_alike(browser, accounts):
    email = _user(accounts)
    wrong, unknown = _login(browser, email, "not the password"), _login(browser, "nobody-" + email)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json() == {"error": "wrong email or password"}
    assert browser.get("/api/v1/me").status_code == 401


def test_changes_need_the_csrf_token(browser, accounts):
    email = _user(accounts)
    no_token = browser.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert no_token.status_code == 400 and "CSRF" in no_token.get_json()["error"]
    r = _login(browser, email)
    token = r.get_json()["csrf_token"]
    assert browser.patch("/api/v1/me", json={"name": "x"}).status_code == 400  # logged in, no token
    forged = browser.patch("/api/v1/me", json={"name": "x"}, headers={"X-CSRFToken": "forged"})
    assert forged.status_code == 400 and "invalid" in forged.get_json()["error"]
    ok = browser.patch("/api/v1/me", json={"name": "x"}, headers={"X-CSRFToken": token})
    assert ok.status_code == 200 and ok.get_json()["name"] == "x"


def test_login_is_limited_per_account(tight, accounts):
    """Failed logins of one account, from many addresses: the limit (3 a minute here) holds,
    and says when to retry; other accounts are untouched."""
    email, other = _user(accounts), _user(accounts)
    answers = [_login(_client(tight), email, "wrong password!") for _ in range(5)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429, 429]
    refused = answers[-1]
    assert "failed logins for this account" in refused.get_json()["error"] and int(refused.headers["Retry-After"]) > 0
    client = _client(tight)
    assert _login(client, email).status_code == 429  # even the right password, until the window passes
    assert _login(client, other).status_code == 200


def test_login_is_limited_per_address(tight, accounts):
    """Every attempt from one address counts (8 a minute here), whatever the account."""
    browser = _client(tight)
    statuses = [_login(browser, _user(accounts)).status_code for _ in range(10)]
    assert statuses[:8] == [200] * 8 and statuses[8:] == [429, 429]
    assert "from this address" in _login(browser, "x@example.test").get_json()["error"]


def test_second_factor(browser, accounts):
    email = _user(accounts)
    token = _login(browser, email).get_json()["csrf_token"]
    headers = {"X-CSRFToken": token}
    setup = browser.post("/api/v1/me/totp", headers=headers).get_json()
    totp = pyotp.TOTP(setup["secret"])
    assert setup["uri"].startswith("otpauth://totp/") and "Parallax" in setup["uri"]
    assert browser.post("/api/v1/me/totp/confirm", json={"code": "000000"}, headers=headers).status_code == 400
    code = totp.now()
    me = browser.post("/api/v1/me/totp/confirm", json={"code": code}, headers=headers).get_json()
    assert me["second_factor"] == {"enabled": True, "required": False}

    other = _client(browser.application)
    need = _login(other, email)
    assert need.status_code == 401 and need.get_json()["second_factor"] == "totp"
    assert _login(other, email, totp="123456").status_code == 401
    assert _login(other, email, totp=code).status_code == 401  # spent when it was confirmed
    later = totp.at(datetime.now(timezone.utc) + timedelta(seconds=30))
    assert _login(other, email, totp=later).status_code == 200  # the next step's code, within the drift
    assert _login(other, email, totp=later).status_code == 401  # and never twice


def test_an_admin_can_require_a_second_factor(app, accounts):
    admin, user = _user(accounts, is_admin=True), _user(accounts)
    admin_browser, browser = _client(app), _client(app)
    token = _login(admin_browser, admin).get_json()["csrf_token"]
    r = admin_browser.patch(f"/api/v1/users/{user}", json={"require_totp": True}, headers={"X-CSRFToken": token})
    assert r.status_code == 200 and r.get_json()["totp_required"] is True

    login = _login(browser, user)
    assert login.status_code == 200
    headers = {"X-CSRFToken": login.get_json()["csrf_token"]}
    refused = browser.get("/api/v1/sites")
    assert refused.status_code == 403 and "second factor" in refused.get_json()["error"]
    assert browser.get("/api/v1/me").get_json()["second_factor"] == {"enabled": False, "required": True}
    secret = browser.post("/api/v1/me/totp", headers=headers).get_json()["secret"]
    assert browser.post("/api/v1/me/totp/confirm", json={"code": pyotp.TOTP(secret).now()},
                        headers=headers).status_code == 200
    assert browser.get("/api/v1/sites").status_code == 200
    off = browser.post("/api/v1/me/totp/disable", json={"password": PASSWORD, "code": "000000"}, headers=headers)
    assert off.status_code == 400  # wrong code; and with a right one, the requirement forbids it:
    assert accounts.user(user).totp_enabled


def test_a_password_change_ends_every_other_session(app, accounts):
    email = _user(accounts)
    first, second = _client(app), _client(app)
    token = _login(first, email).get_json()["csrf_token"]
    _login(second, email)
    assert second.get("/api/v1/me").status_code == 200
    wrong = first.post("/api/v1/me/password", json={"current_password": "nope", "new_password": "x" * 12},
                       headers={"X-CSRFToken": token})
    assert wrong.status_code == 400 and wrong.get_json()["parameter"] == "current_password"
    short = first.post("/api/v1/me/password", json={"current_password": PASSWORD, "new_password": "short"},
                       headers={"X-CSRFToken": token})
    assert short.status_code == 400 and "12 characters" in short.get_json()["error"]
    r = first.post("/api/v1/me/password", json={"current_password": PASSWORD, "new_password": "a new long password"},
                   headers={"X-CSRFToken": token})
    assert r.status_code == 200 and r.get_json()["ended_sessions"] == 1
    assert second.get("/api/v1/me").status_code == 401
    assert first.get("/api/v1/me").status_code == 200  # this browser goes on, under a new session
    assert accounts.authenticate(email, "a new long password") is not None


def test_api_tokens_over_the_api(browser, accounts, registry):
    email = _user(accounts)
    site = f"tok-{uuid.uuid4().hex[:8]}"
    registry.add_site(site, ["example.test"], "UTC")
    accounts.grant(email, site, "viewer")
    headers = {"X-CSRFToken": _login(browser, email).get_json()["csrf_token"]}
    made = browser.post("/api/v1/me/tokens", json={"name": "export", "site": site, "read_only": True},
                        headers=headers)
    assert made.status_code == 201
    secret, info = made.get_json()["secret"], made.get_json()["token"]
    assert secret.startswith("plx_") and info["site"] == site and info["read_only"]
    listed = browser.get("/api/v1/me/tokens").get_json()["tokens"]
    assert [t["id"] for t in listed] == [info["id"]] and secret not in str(listed)
    script = browser.application.test_client()
    bearer = {"Authorization": f"Bearer {secret}"}
    assert script.get(f"/api/v1/sites/{site}/report", headers=bearer).status_code == 200
    assert script.get("/api/v1/me/tokens", headers=bearer).status_code == 403  # tokens do not manage tokens
    other = browser.post("/api/v1/me/tokens", json={"site": "not-mine"}, headers=headers)
    assert other.status_code == 400 and "unknown site" in other.get_json()["error"]
    assert browser.delete(f"/api/v1/me/tokens/{info['id']}", headers=headers).status_code == 204
    assert script.get(f"/api/v1/sites/{site}/report", headers=bearer).status_code == 401
    assert browser.delete(f"/api/v1/me/tokens/{info['id']}", headers=headers).status_code == 404


def test_admin_manages_users_and_members(app, accounts, registry):
    admin = _user(accounts, is_admin=True)
    browser = _client(app)
    headers = {"X-CSRFToken": _login(browser, admin).get_json()["csrf_token"]}
    site = f"adm-{uuid.uuid4().hex[:8]}"
    made = browser.post("/api/v1/sites", json={"site": site, "domains": ["shop.example"], "timezone": "Europe/Paris"},
                        headers=headers)
    assert made.status_code == 201 and made.get_json()["timezone"] == "Europe/Paris"
    assert browser.post("/api/v1/sites", json={"site": site, "domains": ["x.example"]}, headers=headers).status_code == 409
    new = f"new-{uuid.uuid4().hex[:8]}@example.test"
    r = browser.post("/api/v1/users", json={"email": new, "name": "Bo"}, headers=headers)
    assert r.status_code == 201 and len(r.get_json()["password"]) >= 12  # generated, shown once
    assert accounts.authenticate(new, r.get_json()["password"]) is not None
    assert browser.put(f"/api/v1/sites/{site}/members/{new}", json={"role": "owner"}, headers=headers).status_code == 400
    r = browser.put(f"/api/v1/sites/{site}/members/{new}", json={"role": "analyst"}, headers=headers)
    assert r.status_code == 200 and r.get_json()["members"] == {new: "analyst"}
    assert accounts.memberships(new) == {site: "analyst"}
    assert browser.delete(f"/api/v1/sites/{site}/members/{new}", headers=headers).status_code == 204
    assert accounts.memberships(new) == {}
    assert browser.delete(f"/api/v1/users/{admin}", headers=headers).status_code == 400  # not oneself
    assert browser.delete(f"/api/v1/users/{new}", headers=headers).status_code == 204
    assert accounts.user(new) is None
    assert generate_password() != generate_password()
