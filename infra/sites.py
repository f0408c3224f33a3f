"""Site registration: the sites table the collector checks every event against."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from views.goals import Goal

SITE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def validate_site(site: str, domains: list[str], tz: str) -> None:
    if not SITE_ID.fullmatch(site):
        raise ValueError(f"site id {site!r}: use 1-63 lowercase letters, digits, '.', '_' or '-'")
    for d in domains:
        if not re.fullmatch(r"[a-z0-9.-]+(:\d+)?", d.lower()):
            raise ValueError(f"domain {d!r} is not a host name")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r} (use an IANA name such as Europe/Paris)") from None


def add_site(session: Any, keyspace: str, site: str, domains: list[str], tz: str = "UTC") -> None:
    validate_site(site, domains, tz)
    session.execute(
        f"INSERT INTO {keyspace}.sites (site, domains, timezone, created_at) VALUES (%s, %s, %s, %s)",
        (site, {d.lower() for d in domains}, tz, datetime.now(timezone.utc)),
    )


def list_sites(session: Any, keyspace: str) -> list[Any]:
    return sorted(session.execute(f"SELECT site, domains, timezone, created_at FROM {keyspace}.sites"), key=lambda r: r.site)


def add_goal(session: Any, keyspace: str, goal: "Goal") -> None:
    from views.goals import validate_goal

    validate_goal(goal)
    if session.execute(f"SELECT site FROM {keyspace}.sites WHERE site = %s", (goal.site,)).one() is None:
        raise ValueError(f"unknown site {goal.site!r}: add it first with `parallax site add`")
    session.execute(
        f"INSERT INTO {keyspace}.goals (site, name, kind, pattern, created_at) VALUES (%s, %s, %s, %s, %s)",
        (goal.site, goal.name, goal.kind, goal.pattern, datetime.now(timezone.utc)),
    )


def remove_goal(session: Any, keyspace: str, site: str, name: str) -> bool:
    """Remove a goal; False if there was none of that name."""
    if session.execute(f"SELECT name FROM {keyspace}.goals WHERE site = %s AND name = %s", (site, name)).one() is None:
        return False
    session.execute(f"DELETE FROM {keyspace}.goals WHERE site = %s AND name = %s", (site, name))
    return True
