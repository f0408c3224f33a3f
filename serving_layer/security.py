"""What keeps browsers and scripts honest with the serving layer: the secret that signs CSRF
tokens, CSRF checks (Flask-WTF), login rate limits shared by every process (Flask-Limiter
on ``store.ratelimits``), security headers (Flask-Talisman), CORS closed unless origins
are configured (Flask-CORS), and the client address behind trusted proxies."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask, Response, current_app, request, session
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from infra.settings import Settings
from serving_layer.access import READ_METHODS
from store.ratelimits import CassandraStorage, RateLimitHits

csrf = CSRFProtect()
# Browsers send every change with the token of their session; a request with an
# Authorization header (a script's token) carries no cookie credential to forge.
LOGIN_ENDPOINT = "auth.login"
CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "font-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def secret_key(settings: Settings) -> str:
    """The configured key, or one generated at random on first use and kept in
    ``var/serving/secret_key`` (created exclusively: concurrent processes agree on one)."""
    if settings.serving.secret_key is not None:
        return settings.serving.secret_key.get_secret_value()
    path = settings.paths.var_dir / "serving" / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48))
    return _read_key(path)


def _read_key(path: Path) -> str:
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable secret key: remove it to have a new one generated")
    return key


def _hits() -> RateLimitHits:
    return current_app.extensions["parallax.store"]().rate_limit_hits


limiter = Limiter(get_remote_address, strategy="moving-window", storage_uri="cassandra://",
                  storage_options={"hits": _hits}, headers_enabled=True)
assert CassandraStorage.STORAGE_SCHEME  # registered with `limits` on import


@limiter.request_filter
def _not_a_login() -> bool:
    """Only the login is limited: every other request skips the limiter's checks."""
    return request.endpoint != LOGIN_ENDPOINT


def check_csrf() -> None:
    """Before every request, after the access check: a browser's change carries its CSRF token."""
    if request.method in READ_METHODS or request.endpoint is None or request.headers.get("Authorization"):
        return
    if getattr(session, "sid", None) or getattr(session, "email", "") or request.endpoint == LOGIN_ENDPOINT:
        csrf.protect()


def _no_store(response: Response) -> Response:
    # Reports and accounts are private: no shared cache keeps them.
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask, settings: Settings) -> None:
    app.secret_key = secret_key(settings)
    app.config.update(WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=None, WTF_CSRF_SSL_STRICT=True)
    if settings.serving.trusted_proxies:
        n = settings.serving.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    csrf.init_app(app)
    limiter.init_app(app)
    Talisman(app, force_https=False, content_security_policy=CSP, frame_options="DENY",
             referrer_policy="same-origin", session_cookie_secure=False)
    if settings.serving.allowed_origins:
        CORS(app, resources={r"/api/*": {"origins": list(settings.serving.allowed_origins)}},
             allow_headers=["Authorization", "Content-Type", "X-CSRFToken"], supports_credentials=True)
    app.after_request(_no_store)
