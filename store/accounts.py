"""Accounts of the serving layer: users (argon2id password hashes, an optional TOTP second
factor), their site memberships and roles, API tokens (stored as hashes, shown once), and
server-side login sessions. No user exists until one is added (`parallax user add`), and no
default password exists anywhere."""
from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from store.cql import Tables

# Roles on a site; admins (a user flag) see and manage every site.
ANALYST, VIEWER = "analyst", "viewer"
ROLES = (ANALYST, VIEWER)
MIN_PASSWORD_CHARS = 12
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
# A token: a prefix that says what it is (and lets secret scanners find leaked ones), then
# 256 random bits.
TOKEN_PREFIX = "plx_"
# The second factor: RFC 6238 codes of 6 digits every 30 s; one step of clock drift either
# way is accepted, and a code is never accepted twice (the last used step is kept).
TOTP_ISSUER = "Parallax"
TOTP_DRIFT_STEPS = 1
_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters
# Verified against when the user is unknown, so that an unknown email and a wrong password
# cost the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """A request on accounts that cannot be honoured, in words for the person asking."""


@dataclass(frozen=True)
class User:
    email: str
    name: str
    is_admin: bool
    preferences: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    password_changed_at: datetime | None = None
    totp_enabled: bool = False
    totp_required: bool = False  # an admin requires a second factor of this user

    @property
    def needs_totp_setup(self) -> bool:
        return self.totp_required and not self.totp_enabled


@dataclass(frozen=True)
class StoredSession:
    """A live server-side session: its user ('' before a login), its data, when it ends."""
    email: str
    data: dict[str, Any]
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Token:
    id: str
    email: str
    name: str
    site: str | None  # None: every site the user may see
    read_only: bool
    created_at: datetime | None = None


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL.fullmatch(email):
        raise AccountError(f"{email!r} is not an email address")
    return email


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")


def generate_password() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, 144 random bits


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(ts: datetime | None) -> datetime | None:
    """The driver hands timestamps back naive, in UTC."""
    return None if ts is None else ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts


_USER_COLUMNS = "email, name, is_admin, preferences, created_at, password_changed_at, totp_enabled, totp_required"
_TOKEN_COLUMNS = "id, email, name, site, read_only, created_at"


def _token(row: Any) -> Token:
    return Token(row.id, row.email, row.name, row.site, bool(row.read_only), row.created_at)


def _user(row: Any) -> User:
    return User(row.email, row.name or "", bool(row.is_admin), json.loads(row.preferences or "{}"), row.created_at,
                row.password_changed_at, bool(row.totp_enabled), bool(row.totp_required))


class Accounts(Tables):
    """Users, memberships and tokens in Cassandra."""

    # --- users -------------------------------------------------------------------------

    def add_user(self, email: str, password: str, *, name: str = "", is_admin: bool = False) -> User:
        """A new user; refused if the email is taken (a lightweight transaction decides)."""
        email = normalize_email(email)
        check_password(password)
        now = _now()
        applied = self.execute(
            "INSERT INTO {ks}.users (email, name, password_hash, is_admin, preferences, created_at, "
            "password_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS",
            (email, name, _hasher.hash(password), is_admin, "{}", now, now)).one()
        if not applied.applied:
            raise AccountError(f"a user {email} exists already")
        return User(email, name, is_admin, {}, now, now)

    def user(self, email: str) -> User | None:
        email = email.strip().lower()
        if not email:
            return None
        row = self.execute(f"SELECT {_USER_COLUMNS} FROM {{ks}}.users WHERE email = ?", (email,)).one()
        return _user(row) if row else None

    def users(self) -> list[User]:
        rows = self.execute(f"SELECT {_USER_COLUMNS} FROM {{ks}}.users")
        return sorted((_user(r) for r in rows), key=lambda u: u.email)

    def authenticate(self, email: str, password: str) -> User | None:
        """The user if the password is theirs, else None, in the same time whether the
        email is unknown or the password wrong."""
        email = email.strip().lower()
        row = self.execute(f"SELECT {_USER_COLUMNS}, password_hash FROM {{ks}}.users WHERE email = ?",
                           (email,)).one() if email else None
        try:
            _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if _hasher.check_needs_rehash(row.password_hash):  # parameters raised since it was hashed
            self.execute("UPDATE {ks}.users SET password_hash = ? WHERE email = ?", (_hasher.hash(password), row.email))
        return _user(row)

    def set_password(self, email: str, password: str) -> int:
        """A new password; every login session of the user ends with the old one (how many)."""
        check_password(password)
        user = self._require(email)
        self.execute("UPDATE {ks}.users SET password_hash = ?, password_changed_at = ? WHERE email = ?",
                     (_hasher.hash(password), _now(), user.email))
        return self.end_sessions(user.email)

    def update_profile(self, email: str, *, name: str | None = None,
                       preferences: dict[str, Any] | None = None) -> User:
        user = self._require(email)
        if name is not None:
            self.execute("UPDATE {ks}.users SET name = ? WHERE email = ?", (name.strip(), user.email))
        if preferences is not None:
            self.execute("UPDATE {ks}.users SET preferences = ? WHERE email = ?",
                         (json.dumps(preferences, sort_keys=True), user.email))
        return self._require(email)

    def set_admin(self, email: str, is_admin: bool) -> User:
        user = self._require(email)
        self.execute("UPDATE {ks}.users SET is_admin = ? WHERE email = ?", (is_admin, user.email))
        return self._require(email)

    def remove_user(self, email: str) -> None:
        user = self._require(email)
        for site in self.memberships(user.email):
            self.revoke(user.email, site)
        for token in self.tokens(user.email):
            self.revoke_token(user.email, token.id)
        self.end_sessions(user.email)
        self.execute("DELETE FROM {ks}.users WHERE email = ?", (user.email,))

    def _require(self, email: str) -> User:
        user = self.user(email)
        if user is None:
            raise AccountError(f"no user {email.strip().lower()}")
        return user

    # --- memberships ---------------------------------------------------------------------

    def grant(self, email: str, site: str, role: str) -> None:
        """Make the user a member of ``site`` with ``role`` (replacing any earlier role)."""
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        user = self._require(email)
        if self.execute("SELECT site FROM {ks}.sites WHERE site = ?", (site,)).one() is None:
            raise AccountError(f"unknown site {site!r}: add it first with `parallax site add`")
        now = _now()
        self.execute("INSERT INTO {ks}.memberships_by_user (email, site, role, granted_at) VALUES (?, ?, ?, ?)",
                     (user.email, site, role, now))
        self.execute("INSERT INTO {ks}.memberships_by_site (site, email, role, granted_at) VALUES (?, ?, ?, ?)",
                     (site, user.email, role, now))

    def revoke(self, email: str, site: str) -> bool:
        """End a membership; False if there was none."""
        email = email.strip().lower()
        if self.role(email, site) is None:
            return False
        self.execute("DELETE FROM {ks}.memberships_by_user WHERE email = ? AND site = ?", (email, site))
        self.execute("DELETE FROM {ks}.memberships_by_site WHERE site = ? AND email = ?", (site, email))
        return True

    def role(self, email: str, site: str) -> str | None:
        if not email.strip() or not site:
            return None
        row = self.execute("SELECT role FROM {ks}.memberships_by_user WHERE email = ? AND site = ?",
                           (email.strip().lower(), site)).one()
        return row.role if row else None

    def memberships(self, email: str) -> dict[str, str]:
        """The user's sites and their role on each."""
        if not email.strip():
            return {}
        rows = self.execute("SELECT site, role FROM {ks}.memberships_by_user WHERE email = ?", (email.strip().lower(),))
        return {r.site: r.role for r in rows}

    def members(self, site: str) -> dict[str, str]:
        rows = self.execute("SELECT email, role FROM {ks}.memberships_by_site WHERE site = ?", (site,))
        return {r.email: r.role for r in rows}

    # --- API tokens ----------------------------------------------------------------------

    def create_token(self, email: str, name: str, *, site: str | None = None,
                     read_only: bool = False) -> tuple[Token, str]:
        """A new token of the user's, and its secret (shown once: only its hash is kept).
        ``site``: the token reaches that site only (one the user may see)."""
        user = self._require(email)
        if site is not None and not user.is_admin and self.role(user.email, site) is None:
            raise AccountError(f"{user.email} is not a member of site {site!r}")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = Token(secrets.token_hex(8), user.email, name.strip() or "token", site, read_only, _now())
        digest = token_hash(secret)
        self.execute("INSERT INTO {ks}.api_tokens (token_hash, id, email, name, site, read_only, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (digest, token.id, token.email, token.name, site, read_only, token.created_at))
        self.execute("INSERT INTO {ks}.tokens_by_user (email, id, token_hash, name, site, read_only, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (token.email, token.id, digest, token.name, site, read_only, token.created_at))
        return token, secret

    def tokens(self, email: str) -> list[Token]:
        rows = self.execute(f"SELECT {_TOKEN_COLUMNS} FROM {{ks}}.tokens_by_user WHERE email = ?",
                            (email.strip().lower(),))
        return sorted((_token(r) for r in rows), key=lambda t: (t.created_at or _now(), t.id))

    def revoke_token(self, email: str, token_id: str) -> bool:
        """Revoke one of the user's tokens; False if they have none of that id."""
        email = email.strip().lower()
        row = self.execute("SELECT token_hash FROM {ks}.tokens_by_user WHERE email = ? AND id = ?",
                           (email, token_id)).one()
        if row is None:
            return False
        self.execute("DELETE FROM {ks}.api_tokens WHERE token_hash = ?", (row.token_hash,))
        self.execute("DELETE FROM {ks}.tokens_by_user WHERE email = ? AND id = ?", (email, token_id))
        return True

    def token_owner(self, secret: str) -> tuple[User, Token] | None:
        """The user and token a bearer secret belongs to; None if it is not a live token."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        row = self.execute(f"SELECT {_TOKEN_COLUMNS} FROM {{ks}}.api_tokens WHERE token_hash = ?",
                           (token_hash(secret),)).one()
        if row is None:
            return None
        user = self.user(row.email)
        if user is None:
            return None
        return user, _token(row)

    # --- second factor (TOTP) -----------------------------------------------------------

    def begin_totp(self, email: str) -> str:
        """A new TOTP secret for the user, not yet in force: its provisioning URI (for an
        authenticator app) until ``confirm_totp`` is given a code from it."""
        user = self._require(email)
        if user.totp_enabled:
            raise AccountError("a second factor is set up already: turn it off first to set up another")
        secret = pyotp.random_base32()
        self.execute("UPDATE {ks}.users SET totp_secret = ?, totp_enabled = false WHERE email = ?",
                     (secret, user.email))
        return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)

    def confirm_totp(self, email: str, code: str) -> bool:
        """Put the pending second factor in force if ``code`` is one of its current codes."""
        user = self._require(email)
        if user.totp_enabled:
            raise AccountError("a second factor is set up already")
        if not self._accept_code(user.email, code, pending=True):
            return False
        self.execute("UPDATE {ks}.users SET totp_enabled = true WHERE email = ?", (user.email,))
        return True

    def verify_totp(self, email: str, code: str) -> bool:
        """Whether ``code`` is a current code of the user's second factor, used for the first time."""
        return self._accept_code(email.strip().lower(), code, pending=False)

    def disable_totp(self, email: str) -> None:
        user = self._require(email)
        if user.totp_required:
            raise AccountError("an admin requires a second factor of this account: it cannot be turned off")
        self.execute("UPDATE {ks}.users SET totp_secret = null, totp_enabled = false, totp_last_step = null "
                     "WHERE email = ?", (user.email,))

    def require_totp(self, email: str, required: bool) -> User:
        """An admin's decision: the user must (or need no longer) use a second factor."""
        user = self._require(email)
        self.execute("UPDATE {ks}.users SET totp_required = ? WHERE email = ?", (required, user.email))
        return self._require(email)

    def _accept_code(self, email: str, code: str, *, pending: bool) -> bool:
        row = self.execute("SELECT totp_secret, totp_enabled, totp_last_step FROM {ks}.users WHERE email = ?",
                           (email,)).one()
        code = (code or "").strip().replace(" ", "")
        if row is None or not row.totp_secret or bool(row.totp_enabled) == pending or not code.isdigit():
            return False
        totp, now = pyotp.TOTP(row.totp_secret), _now()
        step = totp.timecode(now)
        for candidate in range(step - TOTP_DRIFT_STEPS, step + TOTP_DRIFT_STEPS + 1):
            if candidate > (row.totp_last_step or -1) and secrets.compare_digest(totp.generate_otp(candidate), code):
                # The step is spent: the same code cannot log in twice (a lightweight
                # transaction, so two processes cannot both accept it).
                applied = self.execute("UPDATE {ks}.users SET totp_last_step = ? WHERE email = ? "
                                       "IF totp_last_step = ?", (candidate, email, row.totp_last_step)).one()
                return bool(applied.applied)
        return False

    # --- login sessions ------------------------------------------------------------------

    def start_session(self, email: str, lifetime_s: int, data: dict[str, Any] | None = None) -> str:
        """A new login session of the user for ``lifetime_s`` seconds: its id, for the
        cookie (only its hash is stored, so a read of the table opens no session)."""
        user = self._require(email)
        session_id, now = new_session_id(), _now()
        self.save_session(session_id, user.email, data or {}, now, now + timedelta(seconds=max(1, int(lifetime_s))))
        return session_id

    def save_session(self, session_id: str, email: str, data: dict[str, Any], created_at: datetime,
                     expires_at: datetime) -> None:
        """Write a session's data; it lives until ``expires_at`` (its rows' TTL)."""
        ttl = int((expires_at - _now()).total_seconds())
        if ttl <= 0:
            return
        digest = token_hash(session_id)
        self.execute(f"INSERT INTO {{ks}}.login_sessions (id_hash, email, data, created_at, expires_at) "
                     f"VALUES (?, ?, ?, ?, ?) USING TTL {ttl}",
                     (digest, email, json.dumps(data, sort_keys=True), created_at, expires_at))
        if email:
            self.execute(f"INSERT INTO {{ks}}.login_sessions_by_user (email, id_hash, created_at) VALUES (?, ?, ?) "
                         f"USING TTL {ttl}", (email, digest, created_at))

    def load_session(self, session_id: str) -> StoredSession | None:
        """A live session (logged in or not); None once it expired or was ended."""
        row = self.execute("SELECT email, data, created_at, expires_at FROM {ks}.login_sessions WHERE id_hash = ?",
                           (token_hash(session_id),)).one()
        if row is None:
            return None
        created = _utc(row.created_at) or _now()
        # Sessions written before expires_at existed end when their TTL says; a day is a bound.
        expires = _utc(row.expires_at) or created + timedelta(days=1)
        return StoredSession(row.email or "", json.loads(row.data or "{}"), created, expires)

    def session_user(self, session_id: str) -> User | None:
        """The user of a live login session; None once it expired, was ended, or its user
        is gone."""
        stored = self.load_session(session_id)
        return self.user(stored.email) if stored and stored.email else None

    def end_session(self, session_id: str) -> None:
        digest = token_hash(session_id)
        row = self.execute("SELECT email FROM {ks}.login_sessions WHERE id_hash = ?", (digest,)).one()
        self.execute("DELETE FROM {ks}.login_sessions WHERE id_hash = ?", (digest,))
        if row and row.email:
            self.execute("DELETE FROM {ks}.login_sessions_by_user WHERE email = ? AND id_hash = ?", (row.email, digest))

    def end_sessions(self, email: str, *, keep: str | None = None) -> int:
        """End every login session of the user (a password change, a removal), but ``keep``
        (a session id); how many ended."""
        kept = token_hash(keep) if keep else None
        rows = [r for r in self.execute("SELECT id_hash FROM {ks}.login_sessions_by_user WHERE email = ?", (email,))
                if r.id_hash != kept]
        for r in rows:
            self.execute("DELETE FROM {ks}.login_sessions WHERE id_hash = ?", (r.id_hash,))
            self.execute("DELETE FROM {ks}.login_sessions_by_user WHERE email = ? AND id_hash = ?", (email, r.id_hash))
        return len(rows)
