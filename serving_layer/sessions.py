"""Server-side sessions in Cassandra, behind Flask's ``session``.

The browser holds only a random id (an HttpOnly, SameSite=Lax cookie, Secure over HTTPS);
the session's data lives in ``login_sessions`` under the id's hash, with a TTL. So a
logout, a password change or a removed user ends a session everywhere at once, which a
signed cookie cannot do. Flask-Session has no Cassandra backend; this is Flask's documented
``SessionInterface`` over ``store.accounts``.

A browser that has not logged in gets a session only once something is stored in it (its
CSRF token, to log in). Logging in starts a new session under a new id (no fixation).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Flask, Request, Response, request
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from serving_layer.errors import STORE_DOWN, store_down
from serving_layer.recent import Recent
from store.accounts import Accounts, new_session_id

COOKIE = "parallax_session"
SOCKETIO_PATH = "/socket.io"


class ServerSession(CallbackDict, SessionMixin):
    """A session's data, its id and user ('' before a login), and what changed."""

    def __init__(self, data: dict[str, Any] | None = None, sid: str | None = None, email: str = "",
                 created_at: datetime | None = None, expires_at: datetime | None = None) -> None:
        def on_update(_: Any) -> None:
            self.modified = True

        super().__init__(data or {}, on_update)
        self.sid, self.email = sid, email
        self.created_at, self.expires_at = created_at, expires_at
        self.modified = False
        self.ended: list[str] = []  # ids to delete: a logout, or the anonymous id a login replaced
        # Cassandra was away when the session was read: the request is answered 503 (by the
        # access check), not as if it had no session.
        self.unavailable: Exception | None = None

    def log_in(self, email: str, lifetime_s: int) -> None:
        """Make this a new session of ``email``: a new id, the old one ended."""
        if self.sid:
            self.ended.append(self.sid)
        now = datetime.now(timezone.utc)
        self.sid, self.email = None, email
        self.created_at, self.expires_at = now, now + timedelta(seconds=lifetime_s)
        self.modified = True

    def log_out(self) -> None:
        if self.sid:
            self.ended.append(self.sid)
        self.sid, self.email = None, ""
        self.clear()
        self.modified = False


class CassandraSessionInterface(SessionInterface):
    """``recent``: sessions read at most a second ago (``serving_layer.access.callers``);
    a session this process writes or ends is forgotten at once."""

    def __init__(self, accounts: Callable[[], Accounts], lifetime_s: int, anonymous_lifetime_s: int,
                 recent: Recent) -> None:
        self.accounts, self.lifetime_s, self.anonymous_lifetime_s = accounts, lifetime_s, anonymous_lifetime_s
        self.recent = recent

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(COOKIE)
        if request.path.startswith(SOCKETIO_PATH):
            # Socket.IO events run in a request context of their connection: each would read
            # the session again. A socket checks its caller itself (serving_layer.live).
            return ServerSession()
        if sid and len(sid) < 100:
            try:
                stored = self.recent.get(("stored session", sid), lambda: self.accounts().load_session(sid))
            except STORE_DOWN as exc:
                session = ServerSession()
                session.unavailable = exc
                return session
            if stored is not None:
                return ServerSession(stored.data, sid, stored.email, stored.created_at, stored.expires_at)
        return ServerSession()

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        if session.unavailable is not None:
            return
        try:
            self._save(session, response)
        except STORE_DOWN as exc:
            # The session (a login, a logout) did not reach the store: the caller is told,
            # as for any read of Cassandra, rather than given a cookie that names nothing.
            answer = store_down(exc)
            response.status_code = answer.status_code
            response.set_data(answer.get_data())
            response.headers.update(answer.headers)
            response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax")

    def _save(self, session: ServerSession, response: Response) -> None:
        for sid in session.ended:
            self.accounts().end_session(sid)
            self.recent.forget()
        if session.ended and not session.sid and not session.modified:
            response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax")
            return
        if not session.modified:
            return
        now = datetime.now(timezone.utc)
        if session.expires_at is None:  # a new anonymous session
            session.created_at = now
            session.expires_at = now + timedelta(seconds=self.anonymous_lifetime_s)
        session.sid = session.sid or new_session_id()
        self.accounts().save_session(session.sid, session.email, dict(session), session.created_at or now,
                                     session.expires_at)
        self.recent.forget(("stored session", session.sid))
        response.set_cookie(COOKIE, session.sid, max_age=max(1, int((session.expires_at - now).total_seconds())),
                            path="/", httponly=True, samesite="Lax", secure=request.is_secure)
