"""Which (day, sites) a batch run recomputes, nightly or for a reprocessing range: a site's
day is recomputed once it has ended in the site's own time zone, plus a grace period for
the last late events."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

from views.catalogue import local_day_bounds

# Events may arrive a little after their day ended (a tracker retrying, a slow network).
# The hourly DAG's runs start this many minutes past the hour and process the midnights
# of the hour before, so every day is computed at least this long after it ended.
GRACE = timedelta(minutes=15)
# The longest range one reprocessing takes: a year of days, each a Spark job of its own.
MAX_DAYS = 366


class PlanError(ValueError):
    """A reprocessing asked for a range or a site that cannot be."""


def days_ended_between(sites: dict[str, str], start: datetime, end: datetime) -> dict[date, list[str]]:
    """Per day, the sites whose local day ended (local midnight) in [start, end)."""
    out: dict[date, list[str]] = defaultdict(list)
    for site, tz in sorted(sites.items()):
        # A local midnight in [start, end) ends the local day before that midnight's date.
        for utc_day in {(start - timedelta(days=1)).date(), start.date(), end.date(), (end + timedelta(days=1)).date()}:
            _, day_end = local_day_bounds(utc_day, tz)
            if start <= day_end < end:
                out[utc_day].append(site)
    return dict(sorted(out.items()))


def sites_with_day_ended(sites: dict[str, str], day: date, now: datetime) -> tuple[list[str], list[str]]:
    """(ready, not yet): sites whose ``day`` ended at least GRACE before ``now``."""
    ready, waiting = [], []
    for site, tz in sorted(sites.items()):
        (ready if local_day_bounds(day, tz)[1] + GRACE <= now else waiting).append(site)
    return ready, waiting


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def plan_range(zones: dict[str, str], first: date, last: date, sites: list[str], now: datetime
               ) -> tuple[dict[date, list[str]], list[tuple[date, list[str]]]]:
    """(per day, the sites to recompute; per day, the chosen sites where it has not ended
    yet). Raises PlanError for a range or a site that cannot be."""
    if last < first:
        raise PlanError(f"the range ends ({last}) before it starts ({first})")
    if (last - first).days + 1 > MAX_DAYS:
        raise PlanError(f"{(last - first).days + 1} days asked; a run takes at most {MAX_DAYS}")
    unknown = [s for s in sites if s not in zones]
    if unknown:
        raise PlanError(f"no such site: {', '.join(unknown)}")
    chosen = {s: zones[s] for s in (sites or sorted(zones))}
    ready, waiting = {}, []
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        done, not_yet = sites_with_day_ended(chosen, day, now)
        if done:
            ready[day] = done
        if not_yet:
            waiting.append((day, not_yet))
    return ready, waiting


def plan_site_days(zones: dict[str, str], site_days: dict[date, list[str]], now: datetime
                   ) -> tuple[dict[date, list[str]], list[tuple[date, list[str]]]]:
    """``plan_range`` for an explicit list of site-days (sites no longer registered left out)."""
    ready, waiting = {}, []
    for day, sites in sorted(site_days.items()):
        done, not_yet = sites_with_day_ended({s: zones[s] for s in sites if s in zones}, day, now)
        if done:
            ready[day] = done
        if not_yet:
            waiting.append((day, not_yet))
    return ready, waiting
