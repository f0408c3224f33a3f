"""`parallax user`, `parallax member` and `parallax token`: the serving layer's accounts.

There is no default account: the first admin is added with `parallax user add EMAIL
--admin`, with a password typed twice or generated and shown once."""
from __future__ import annotations

import click

from cli.common import accounts, fail
from infra.settings import Settings
from store.accounts import ROLES, generate_password


@click.group()
def user() -> None:
    """Users of the serving layer (reports, dashboards, the API)."""


@user.command("add")
@click.argument("email")
@click.option("--name", default="", help="the name shown to other users")
@click.option("--admin", is_flag=True, help="an admin: every site, users and settings")
@click.option("--generate-password", "generate", is_flag=True,
              help="generate the password and show it once, instead of asking for one")
@click.pass_obj
def user_add(settings: Settings, email: str, name: str, admin: bool, generate: bool) -> None:
    """Add user EMAIL. Without --admin they see no site until `parallax member grant`."""
    password = generate_password() if generate else click.prompt(
        "password (12 characters or more)", hide_input=True, confirmation_prompt=True)
    with accounts(settings) as store:
        added = store.add_user(email, password, name=name, is_admin=admin)
    click.echo(f"user {added.email} added{' (admin)' if admin else ''}")
    if generate:
        click.echo(f"password (shown once): {password}")


@user.command("list")
@click.pass_obj
def user_list(settings: Settings) -> None:
    with accounts(settings) as store:
        for u in store.users():
            sites = store.memberships(u.email)
            roles = "admin (every site)" if u.is_admin else ", ".join(f"{s}:{r}" for s, r in sorted(sites.items()))
            click.echo(f"{u.email:32s} {u.name:20s} {roles or '(no site)'}")


@user.command("password")
@click.argument("email")
@click.option("--generate-password", "generate", is_flag=True, help="generate it and show it once")
@click.pass_obj
def user_password(settings: Settings, email: str, generate: bool) -> None:
    """Set a user's password."""
    password = generate_password() if generate else click.prompt(
        "new password (12 characters or more)", hide_input=True, confirmation_prompt=True)
    with accounts(settings) as store:
        store.set_password(email, password)
    click.echo(f"password of {email} changed" + (f"; new password (shown once): {password}" if generate else ""))


@user.command("remove")
@click.argument("email")
@click.pass_obj
def user_remove(settings: Settings, email: str) -> None:
    """Remove a user, their memberships and their tokens."""
    with accounts(settings) as store:
        store.remove_user(email)
    click.echo(f"user {email} removed")


@click.group()
def member() -> None:
    """Who may see a site, and as what (analyst: read, export, alerts and goals; viewer: read)."""


@member.command("grant")
@click.argument("email")
@click.argument("site_id")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.pass_obj
def member_grant(settings: Settings, email: str, site_id: str, role: str) -> None:
    with accounts(settings) as store:
        store.grant(email, site_id, role)
    click.echo(f"{email} is now {role} of {site_id}")


@member.command("revoke")
@click.argument("email")
@click.argument("site_id")
@click.pass_obj
def member_revoke(settings: Settings, email: str, site_id: str) -> None:
    with accounts(settings) as store:
        if not store.revoke(email, site_id):
            fail(f"{email} is not a member of {site_id}")
    click.echo(f"{email} is no longer a member of {site_id}")


@member.command("list")
@click.argument("site_id")
@click.pass_obj
def member_list(settings: Settings, site_id: str) -> None:
    with accounts(settings) as store:
        for email, role in sorted(store.members(site_id).items()):
            click.echo(f"{email:32s} {role}")


@click.group()
def token() -> None:
    """API tokens for scripts, sent as `Authorization: Bearer …` (shown once, stored hashed)."""


@token.command("create")
@click.argument("email")
@click.option("--name", default="token", show_default=True, help="what the token is for")
@click.option("--site", "site_id", help="limit the token to this site")
@click.option("--read-only", is_flag=True, help="the token may read, never change anything")
@click.pass_obj
def token_create(settings: Settings, email: str, name: str, site_id: str | None, read_only: bool) -> None:
    """Create a token of user EMAIL."""
    with accounts(settings) as store:
        created, secret = store.create_token(email, name, site=site_id, read_only=read_only)
    click.echo(f"token {created.id} ({created.name}) of {created.email}"
               f"{', site ' + site_id if site_id else ''}{', read-only' if read_only else ''}")
    click.echo(f"secret (shown once): {secret}")


@token.command("list")
@click.argument("email")
@click.pass_obj
def token_list(settings: Settings, email: str) -> None:
    with accounts(settings) as store:
        for t in store.tokens(email):
            access = "read-only" if t.read_only else "read-write"
            click.echo(f"{t.id}  {t.name:20s} {t.site or '(every site)':20s} {access}  {t.created_at:%Y-%m-%d %H:%M}")


@token.command("revoke")
@click.argument("email")
@click.argument("token_id")
@click.pass_obj
def token_revoke(settings: Settings, email: str, token_id: str) -> None:
    with accounts(settings) as store:
        if not store.revoke_token(email, token_id):
            fail(f"{email} has no token {token_id}")
    click.echo(f"token {token_id} of {email} revoked")
