"""Accounts on the real Cassandra: users with argon2id hashes, memberships and roles, API
tokens stored hashed; and the `parallax user|member|token` commands that manage them."""
from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from store.accounts import AccountError, Accounts

PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(stack, cassandra) -> Accounts:
    return Accounts(cassandra, stack.cassandra.keyspace)


def _email() -> str:
    return f"u-{uuid.uuid4().hex[:10]}@example.test"


def test_users_and_passwords(accounts, stack, cassandra):
    email = _email()
    added = accounts.add_user(email.upper(), PASSWORD, name="Ada")
    assert added.email == email and not added.is_admin
    stored = cassandra.execute(f"SELECT password_hash FROM {stack.cassandra.keyspace}.users WHERE email=%s",
                               (email,)).one().password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert accounts.authenticate(email, PASSWORD).name == "Ada"
    assert accounts.authenticate(email, PASSWORD + "x") is None
    assert accounts.authenticate(_email(), PASSWORD) is None  # unknown: the same answer
    with pytest.raises(AccountError, match="exists already"):
        accounts.add_user(email, PASSWORD)
    with pytest.raises(AccountError, match="at least 12"):
        accounts.add_user(_email(), "short")
    with pytest.raises(AccountError, match="not an email"):
        accounts.add_user("nobody", PASSWORD)

    accounts.set_password(email, "another long password")
    assert accounts.authenticate(email, PASSWORD) is None
    assert accounts.authenticate(email, "another long password") is not None
    updated = accounts.update_profile(email, name="Ada L.", preferences={"range": "7d", "theme": "dark"})
    assert (updated.name, updated.preferences) == ("Ada L.", {"range": "7d", "theme": "dark"})


def test_memberships_and_tokens(accounts, new_site, stack, cassandra):
    email, site, other = _email(), new_site("acc"), new_site("acc")
    accounts.add_user(email, PASSWORD)
    assert accounts.memberships(email) == {}  # a site belongs to no one by default
    accounts.grant(email, site, "analyst")
    assert accounts.memberships(email) == {site: "analyst"} and accounts.members(site) == {email: "analyst"}
    accounts.grant(email, site, "viewer")
    assert accounts.role(email, site) == "viewer"
    with pytest.raises(AccountError, match="role must be"):
        accounts.grant(email, site, "owner")
    with pytest.raises(AccountError, match="unknown site"):
        accounts.grant(email, "no-such-site-" + uuid.uuid4().hex[:6], "viewer")

    token, secret = accounts.create_token(email, "ci", site=site, read_only=True)
    owner, found = accounts.token_owner(secret)
    assert owner.email == email and (found.id, found.site, found.read_only) == (token.id, site, True)
    rows = list(cassandra.execute(f"SELECT * FROM {stack.cassandra.keyspace}.api_tokens"))
    assert all(secret not in str(tuple(r)) for r in rows)  # only its hash is kept
    assert [t.id for t in accounts.tokens(email)] == [token.id]
    with pytest.raises(AccountError, match="not a member"):
        accounts.create_token(email, "x", site=other)
    assert accounts.revoke_token(email, token.id)
    assert accounts.token_owner(secret) is None and accounts.tokens(email) == []
    assert accounts.token_owner("plx_" + "a" * 43) is None and accounts.token_owner("not a token") is None

    assert accounts.revoke(email, site) and not accounts.revoke(email, site)
    assert accounts.members(site) == {}
    accounts.remove_user(email)
    assert accounts.user(email) is None


def test_login_sessions(accounts, stack, cassandra):
    """Server-side: the id is the only secret (its hash is stored), a session lives for its
    lifetime, ends at logout, and every session of a user ends with a password change."""
    email = _email()
    accounts.add_user(email, PASSWORD)
    first, second = accounts.start_session(email, 3600), accounts.start_session(email, 3600)
    assert accounts.session_user(first).email == email and accounts.session_user(second).email == email
    rows = list(cassandra.execute(f"SELECT * FROM {stack.cassandra.keyspace}.login_sessions WHERE email=%s "
                                  "ALLOW FILTERING", (email,)))
    assert len(rows) == 2 and all(first not in str(tuple(r)) for r in rows)
    ttl = cassandra.execute(f"SELECT TTL(email) AS ttl FROM {stack.cassandra.keyspace}.login_sessions "
                            "WHERE id_hash=%s", (rows[0].id_hash,)).one().ttl
    assert 0 < ttl <= 3600
    accounts.end_session(first)
    assert accounts.session_user(first) is None and accounts.session_user(second) is not None
    accounts.set_password(email, "a brand new password")
    assert accounts.session_user(second) is None
    third = accounts.start_session(email, 3600)
    accounts.remove_user(email)
    assert accounts.session_user(third) is None
    assert accounts.session_user("no-such-session") is None


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


def test_the_commands(accounts, new_site, stack):
    email, site = _email(), new_site("cli")
    out = _cli("user", "add", email, "--admin", "--generate-password")
    assert out.returncode == 0, out.stderr
    password = out.stdout.split("password (shown once): ")[1].strip()
    assert accounts.authenticate(email, password).is_admin
    typed = _email()
    out = _cli("user", "add", typed, stdin=f"{PASSWORD}\n{PASSWORD}\n")  # typed twice
    assert out.returncode == 0, out.stderr
    assert accounts.authenticate(typed, PASSWORD) is not None
    assert _cli("user", "add", typed, "--generate-password").returncode == 1  # taken

    assert _cli("member", "grant", typed, site, "--role", "analyst").returncode == 0
    assert typed in _cli("member", "list", site).stdout
    out = _cli("token", "create", typed, "--site", site, "--read-only", "--name", "export")
    assert out.returncode == 0, out.stderr
    secret = out.stdout.split("secret (shown once): ")[1].strip()
    token_id = accounts.token_owner(secret)[1].id
    assert token_id in _cli("token", "list", typed).stdout
    assert _cli("token", "revoke", typed, token_id).returncode == 0
    assert accounts.token_owner(secret) is None
    assert _cli("member", "revoke", typed, site).returncode == 0
    assert accounts.memberships(typed) == {}
