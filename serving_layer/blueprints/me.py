"""The caller's own account: profile and dashboard preferences, password, second factor
(TOTP), and API tokens (shown once, stored hashed; a token can be limited to one site and
to reading)."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, Response, current_app, jsonify, request, session
from flask_wtf.csrf import generate_csrf
from pydantic import BaseModel, Field, field_validator

from serving_layer.access import Access, require_principal
from serving_layer.api import API_PREFIX, Body, endpoint, no_content
from serving_layer.errors import ApiError
from serving_layer.params import store
from serving_layer.sessions import ServerSession
from store.accounts import AccountError, Accounts, Token, User

bp = Blueprint("me", __name__, url_prefix=f"{API_PREFIX}/me")
MAX_PREFERENCES_BYTES = 16_384


class SecondFactor(BaseModel):
    enabled: bool
    required: bool = Field(description="an admin requires it of this account")


class TokenInfo(BaseModel):
    id: str
    name: str
    site: str | None = Field(description="the one site the token reaches; null: every site of the user")
    read_only: bool
    created_at: str | None


class MeAnswer(BaseModel):
    email: str
    name: str
    is_admin: bool
    preferences: dict[str, Any]
    second_factor: SecondFactor
    sites: dict[str, str] = Field(description="the sites the caller may see, and their role on each")
    via: Literal["session", "token"]
    token: TokenInfo | None = None


class ProfileBody(Body):
    name: str | None = Field(None, max_length=100)
    preferences: dict[str, Any] | None = Field(None, description="the dashboard's preferences, any JSON object")

    @field_validator("preferences")
    @classmethod
    def _small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value)) > MAX_PREFERENCES_BYTES:
            raise ValueError(f"at most {MAX_PREFERENCES_BYTES} bytes of JSON")
        return value


class PasswordBody(Body):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class PasswordAnswer(BaseModel):
    ended_sessions: int = Field(description="the account's other sessions, ended")
    csrf_token: str = Field(description="this browser's new session's token")


class TotpSetupAnswer(BaseModel):
    uri: str = Field(description="otpauth:// URI for an authenticator app (as a QR code or typed in)")
    secret: str


class CodeBody(Body):
    code: str = Field(min_length=6, max_length=16)


class TotpOffBody(Body):
    password: str = Field(max_length=1024)
    code: str = Field(min_length=6, max_length=16)


class TokenBody(Body):
    name: str = Field("token", min_length=1, max_length=100)
    site: str | None = Field(None, max_length=63, description="limit the token to this site")
    read_only: bool = False


class TokenList(BaseModel):
    tokens: list[TokenInfo]


class NewToken(BaseModel):
    token: TokenInfo
    secret: str = Field(description="shown this once: only its hash is kept")


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


def token_info(t: Token) -> TokenInfo:
    return TokenInfo(id=t.id, name=t.name, site=t.site, read_only=t.read_only, created_at=_iso(t.created_at))


def me_answer(user: User, accounts: Accounts, via: Literal["session", "token"], token: Token | None = None
              ) -> MeAnswer:
    if user.is_admin:
        sites = {s: "admin" for s in store().registry.site_zones()}
    else:
        sites = accounts.memberships(user.email)
    if token is not None and token.site is not None:
        sites = {s: r for s, r in sites.items() if s == token.site}
    return MeAnswer(email=user.email, name=user.name, is_admin=user.is_admin, preferences=user.preferences,
                    second_factor=SecondFactor(enabled=user.totp_enabled, required=user.totp_required),
                    sites=dict(sorted(sites.items())), via=via, token=token_info(token) if token else None)


def _me() -> Response:
    who = require_principal()
    return jsonify(me_answer(who.user, store().accounts, "token" if who.token else "session", who.token).model_dump())


@endpoint(bp, "GET", "", Access.USER, ok=MeAnswer, setup_ok=True, tags=["account"])
def profile() -> Response:
    """Who the caller is: profile, preferences, second factor, the sites they may see."""
    return _me()


@endpoint(bp, "PATCH", "", Access.USER, body=ProfileBody, ok=MeAnswer, setup_ok=True, tags=["account"])
def update_profile() -> Response:
    """Change the display name or the dashboard preferences."""
    body: ProfileBody = request.context.json  # type: ignore[attr-defined]
    who = require_principal()
    store().accounts.update_profile(who.user.email, name=body.name, preferences=body.preferences)
    who.user = store().accounts.user(who.user.email) or who.user
    return _me()


@endpoint(bp, "POST", "/password", Access.SESSION, body=PasswordBody, ok=PasswordAnswer, setup_ok=True,
          tags=["account"])
def change_password() -> Response:
    """Change the password: every session of the account ends, this browser gets a new one."""
    body: PasswordBody = request.context.json  # type: ignore[attr-defined]
    who = require_principal()
    accounts = store().accounts
    if accounts.authenticate(who.user.email, body.current_password) is None:
        raise ApiError(400, "the current password is wrong", parameter="current_password")
    try:
        ended = accounts.set_password(who.user.email, body.new_password)  # this session's too
    except AccountError as exc:
        raise ApiError(400, str(exc), parameter="new_password") from None
    assert isinstance(session, ServerSession)
    session.sid = None
    session.pop("csrf_token", None)
    session.log_in(who.user.email, current_app.extensions["parallax.settings"].serving.session_lifetime_s)
    return jsonify(ended_sessions=max(0, ended - 1), csrf_token=generate_csrf())


@endpoint(bp, "POST", "/totp", Access.SESSION, ok=TotpSetupAnswer, setup_ok=True, tags=["account"])
def totp_setup() -> Response:
    """Start setting up a second factor: a new secret for an authenticator app, in force
    once a code from it is confirmed."""
    who = require_principal()
    try:
        uri = store().accounts.begin_totp(who.user.email)
    except AccountError as exc:
        raise ApiError(400, str(exc)) from None
    secret = uri.split("secret=")[1].split("&")[0]
    return jsonify(uri=uri, secret=secret)


@endpoint(bp, "POST", "/totp/confirm", Access.SESSION, body=CodeBody, ok=MeAnswer, setup_ok=True, tags=["account"])
def totp_confirm() -> Response:
    """Put the second factor in force with a code of the authenticator app."""
    body: CodeBody = request.context.json  # type: ignore[attr-defined]
    who = require_principal()
    try:
        confirmed = store().accounts.confirm_totp(who.user.email, body.code)
    except AccountError as exc:
        raise ApiError(400, str(exc)) from None
    if not confirmed:
        raise ApiError(400, "wrong code, or no second factor being set up (POST /api/v1/me/totp first)",
                       parameter="code")
    who.user = store().accounts.user(who.user.email) or who.user
    return _me()


@endpoint(bp, "POST", "/totp/disable", Access.SESSION, body=TotpOffBody, ok=MeAnswer, tags=["account"])
def totp_disable() -> Response:
    """Turn the second factor off (the password and a current code confirm it), unless an
    admin requires it."""
    body: TotpOffBody = request.context.json  # type: ignore[attr-defined]
    who = require_principal()
    accounts = store().accounts
    if accounts.authenticate(who.user.email, body.password) is None:
        raise ApiError(400, "the password is wrong", parameter="password")
    if not accounts.verify_totp(who.user.email, body.code):
        raise ApiError(400, "wrong or already used code", parameter="code")
    try:
        accounts.disable_totp(who.user.email)
    except AccountError as exc:
        raise ApiError(403, str(exc)) from None
    who.user = accounts.user(who.user.email) or who.user
    return _me()


@endpoint(bp, "GET", "/tokens", Access.SESSION, ok=TokenList, tags=["account"])
def list_tokens() -> Response:
    """The caller's API tokens (never their secrets)."""
    who = require_principal()
    return jsonify(tokens=[token_info(t).model_dump() for t in store().accounts.tokens(who.user.email)])


@endpoint(bp, "POST", "/tokens", Access.SESSION, body=TokenBody, ok=NewToken, ok_status=201, tags=["account"])
def create_token() -> tuple[Response, int]:
    """A new API token, its secret shown this once. ``site`` limits it to one of the
    caller's sites; ``read_only`` to reading."""
    body: TokenBody = request.context.json  # type: ignore[attr-defined]
    who = require_principal()
    accounts = store().accounts
    if body.site is not None and (who.role(accounts, body.site) is None or store().site_zone(body.site) is None):
        raise ApiError(400, f"unknown site {body.site!r}", parameter="site")
    created, secret = accounts.create_token(who.user.email, body.name, site=body.site, read_only=body.read_only)
    return jsonify(token=token_info(created).model_dump(), secret=secret), 201


@endpoint(bp, "DELETE", "/tokens/<token_id>", Access.SESSION, ok=None, ok_status=204, tags=["account"])
def revoke_token(token_id: str) -> Response:
    """Revoke one of the caller's tokens: it stops working at once, sockets included within seconds."""
    who = require_principal()
    if not store().accounts.revoke_token(who.user.email, token_id):
        raise ApiError(404, f"you have no token {token_id!r}")
    return no_content()
