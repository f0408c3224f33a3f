"""Logging in and out of the serving layer: a browser's CSRF token, the login (password, then
the second factor if the account has one), rate-limited per address and per account."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request, session
from flask_wtf.csrf import generate_csrf
from pydantic import Field

from infra.settings import Settings
from serving_layer.access import Access
from serving_layer.api import API_PREFIX, Body, endpoint, no_content
from serving_layer.blueprints.me import MeAnswer, me_answer
from serving_layer.errors import ApiError
from serving_layer.params import store
from serving_layer.security import limiter
from serving_layer.sessions import ServerSession

bp = Blueprint("auth", __name__, url_prefix=f"{API_PREFIX}/auth")
WRONG = "wrong email or password"  # the same answer, after the same work, for an unknown email


class CsrfAnswer(Body):
    csrf_token: str


class LoginBody(Body):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    totp: str | None = Field(None, max_length=16, description="the code of the account's authenticator app")


class LoginAnswer(Body):
    user: MeAnswer
    csrf_token: str = Field(description="the token to send in X-CSRFToken from now on")


def _settings() -> Settings:
    return current_app.extensions["parallax.settings"]


def _login_email() -> str:
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    return f"account:{email.strip().lower()[:320]}" if isinstance(email, str) else "account:(none)"


@endpoint(bp, "GET", "/csrf", Access.PUBLIC, ok=CsrfAnswer, tags=["auth"])
def csrf_token() -> Response:
    """A CSRF token for this browser's session (a session is started if it has none): send
    it in the X-CSRFToken header of every change, logging in included."""
    return jsonify(csrf_token=generate_csrf())


@endpoint(bp, "POST", "/login", Access.PUBLIC, body=LoginBody, ok=LoginAnswer, errors=(401, 429), tags=["auth"])
@limiter.limit(lambda: _settings().serving.login_limit_ip,
               error_message="too many login attempts from this address; wait and retry (see Retry-After)")
@limiter.limit(lambda: _settings().serving.login_limit_account, key_func=_login_email,
               deduct_when=lambda response: response.status_code == 401,
               error_message="too many failed logins for this account; wait and retry (see Retry-After)")
def login() -> Response:
    """Log in with email and password (and the second factor's code, if the account has
    one). Answers 401 alike for an unknown email and a wrong password."""
    body: LoginBody = request.context.json  # type: ignore[attr-defined]
    accounts = store().accounts
    user = accounts.authenticate(body.email, body.password)
    if user is None:
        raise ApiError(401, WRONG)
    if user.totp_enabled:
        if not body.totp:
            raise ApiError(401, "this account has a second factor: send the code of its authenticator app as "
                                "'totp'", second_factor="totp")
        if not accounts.verify_totp(user.email, body.totp):
            raise ApiError(401, "wrong or already used second-factor code", second_factor="totp")
    assert isinstance(session, ServerSession)
    session.pop("csrf_token", None)  # a new token for the new session
    session.log_in(user.email, _settings().serving.session_lifetime_s)
    return jsonify(user=me_answer(user, accounts, via="session").model_dump(), csrf_token=generate_csrf())


@endpoint(bp, "POST", "/logout", Access.PUBLIC, ok=None, ok_status=204, tags=["auth"])
def logout() -> Response:
    """End this browser's session (everywhere at once: it is stored server-side)."""
    if isinstance(session, ServerSession):
        session.log_out()
    return no_content()
