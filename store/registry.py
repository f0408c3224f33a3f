"""The registry: sites (their domains and time zones), their goals, and the daily salt of
the cookieless visitor id (users and tokens are in ``store.accounts``)."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas import SITE_ID
from store.cql import Tables
from views.goals import Goal, validate_goal

_DOMAIN = re.compile(r"[a-z0-9.-]+(:\d+)?")
# The salt rows live two days: today's and yesterday's.
SALT_TTL_S = 172_800


def validate_site(site: str, domains: list[str], tz: str) -> None:
    if not SITE_ID.fullmatch(site):
        raise ValueError(f"site id {site!r}: use 1-63 lowercase letters, digits, '.', '_' or '-'")
    for d in domains:
        if not _DOMAIN.fullmatch(d.lower()):
            raise ValueError(f"domain {d!r} is not a host name")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r} (use an IANA name such as Europe/Paris)") from None


class Registry(Tables):
    """Sites and goals."""

    def add_site(self, site: str, domains: list[str], tz: str = "UTC") -> None:
        """Register (or re-register) a site; events for unregistered sites are refused."""
        validate_site(site, domains, tz)
        self.execute("INSERT INTO {ks}.sites (site, domains, timezone, created_at) VALUES (?, ?, ?, ?)",
                     (site, {d.lower() for d in domains}, tz, datetime.now(timezone.utc)))

    def set_domains(self, site: str, domains: list[str]) -> None:
        """The hosts a registered site's events may come from (its time zone stays: past
        days' batch views were computed in it)."""
        validate_site(site, domains, "UTC")
        self.execute("UPDATE {ks}.sites SET domains = ? WHERE site = ?", ({d.lower() for d in domains}, site))

    def sites(self) -> list[Any]:
        """Every site's row (site, domains, timezone, created_at), by id."""
        return sorted(self.execute("SELECT site, domains, timezone, created_at FROM {ks}.sites"), key=lambda r: r.site)

    def site(self, site: str) -> Any | None:
        """One site's row (site, domains, timezone, created_at), or None if it is not registered."""
        return self.execute("SELECT site, domains, timezone, created_at FROM {ks}.sites WHERE site = ?", (site,)).one()

    def site_zones(self) -> dict[str, str]:
        """Every registered site and its IANA time zone."""
        return {r.site: r.timezone or "UTC" for r in self.execute("SELECT site, timezone FROM {ks}.sites")}

    def site_zone(self, site: str) -> str | None:
        """The site's IANA time zone, or None if the site is not registered."""
        row = self.execute("SELECT timezone FROM {ks}.sites WHERE site = ?", (site,)).one()
        return (row.timezone or "UTC") if row else None

    def site_domains(self, site: str) -> frozenset[str] | None:
        """The site's registered domains (lowercase, maybe with a port), or None if unknown."""
        row = self.execute("SELECT domains FROM {ks}.sites WHERE site = ?", (site,)).one()
        return None if row is None else frozenset(d.lower() for d in row.domains or ())

    def add_goal(self, goal: Goal) -> None:
        """Add (or replace) a goal of a registered site."""
        validate_goal(goal)
        if self.site_zone(goal.site) is None:
            raise ValueError(f"unknown site {goal.site!r}: add it first with `parallax site add`")
        self.execute("INSERT INTO {ks}.goals (site, name, kind, pattern, created_at) VALUES (?, ?, ?, ?, ?)",
                     (goal.site, goal.name, goal.kind, goal.pattern, datetime.now(timezone.utc)))

    def remove_goal(self, site: str, name: str) -> bool:
        """Remove a goal; False if there was none of that name."""
        if self.execute("SELECT name FROM {ks}.goals WHERE site = ? AND name = ?", (site, name)).one() is None:
            return False
        self.execute("DELETE FROM {ks}.goals WHERE site = ? AND name = ?", (site, name))
        return True

    def site_goals(self, site: str) -> tuple[Goal, ...]:
        """One site's goals, by name."""
        rows = self.execute("SELECT site, name, kind, pattern FROM {ks}.goals WHERE site = ?", (site,))
        return tuple(sorted(Goal(r.site, r.name, r.kind, r.pattern) for r in rows))

    def goals(self) -> tuple[Goal, ...]:
        """Every site's goals, sorted (so two reads compare equal when nothing changed)."""
        rows = self.execute("SELECT site, name, kind, pattern FROM {ks}.goals")
        return tuple(sorted(Goal(r.site, r.name, r.kind, r.pattern) for r in rows))


class VisitorSalts(Tables):
    """One random salt per UTC day, shared by every collector process (the first writer
    wins, by a lightweight transaction); rows expire after two days."""

    def claim(self, day: date, salt: bytes) -> bytes:
        """Store ``salt`` as ``day``'s unless one is there already; return the day's salt."""
        self.execute(f"INSERT INTO {{ks}}.visitor_salts (day, salt) VALUES (?, ?) IF NOT EXISTS USING TTL {SALT_TTL_S}",
                     (day, salt))
        return self.execute("SELECT salt FROM {ks}.visitor_salts WHERE day = ?", (day,)).one().salt
