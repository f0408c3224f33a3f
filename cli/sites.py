"""`parallax site` and `parallax goal`: register sites, and the goals that count as conversions."""
from __future__ import annotations

import click

from cli.common import fail, registry
from infra.settings import Settings
from views.goals import Goal


@click.group()
def site() -> None:
    """Register and list sites."""


@site.command("add")
@click.argument("site_id")
@click.option("--domain", "domains", multiple=True, required=True, help="a domain the tracker runs on (repeatable)")
@click.option("--timezone", "tz", default="UTC", show_default=True, help="IANA time zone of the site's days")
@click.pass_obj
def site_add(settings: Settings, site_id: str, domains: tuple[str, ...], tz: str) -> None:
    with registry(settings) as sites:
        try:
            sites.add_site(site_id, list(domains), tz)
        except ValueError as exc:
            fail(exc)
    click.echo(f"site {site_id} registered for {', '.join(domains)} ({tz})")


@site.command("list")
@click.pass_obj
def site_list(settings: Settings) -> None:
    with registry(settings) as sites:
        for r in sites.sites():
            click.echo(f"{r.site:24s} {','.join(sorted(r.domains or [])):40s} {r.timezone}")


@click.group()
def goal() -> None:
    """Goals: the page visits and custom events that count as conversions."""


@goal.command("add")
@click.argument("site_id")
@click.argument("name")
@click.option("--page", help="a path pattern: * within a segment, ** across (e.g. /signup/*/done)")
@click.option("--event", help="a custom event name (e.g. signup)")
@click.pass_obj
def goal_add(settings: Settings, site_id: str, name: str, page: str | None, event: str | None) -> None:
    """Add (or replace) goal NAME of SITE_ID: visits of --page, or custom --event."""
    if (page is None) == (event is None):
        fail("give exactly one of --page PATTERN or --event NAME")
    new = Goal(site_id, name, "page" if page else "event", page or event)
    with registry(settings) as sites:
        try:
            sites.add_goal(new)
        except ValueError as exc:
            fail(exc)
    click.echo(f"goal {name!r} of {site_id}: {new.kind} {new.pattern!r}. The speed layer counts conversions from "
               f"its next goal refresh (every {settings.speed.goals_refresh_s:.0f} s); for past days run "
               "`parallax batch --date YYYY-MM-DD`.")


@goal.command("list")
@click.argument("site_id", required=False)
@click.pass_obj
def goal_list(settings: Settings, site_id: str | None) -> None:
    with registry(settings) as sites:
        for g in sites.goals():
            if site_id in (None, g.site):
                click.echo(f"{g.site:24s} {g.name:24s} {g.kind:6s} {g.pattern}")


@goal.command("remove")
@click.argument("site_id")
@click.argument("name")
@click.pass_obj
def goal_remove(settings: Settings, site_id: str, name: str) -> None:
    with registry(settings) as sites:
        found = sites.remove_goal(site_id, name)
    if not found:
        fail(f"site {site_id} has no goal {name!r}")
    click.echo(f"goal {name!r} of {site_id} removed (views computed before keep their conversions)")
