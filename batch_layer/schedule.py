"""Which (day, sites) a batch run recomputes: a site's day is recomputed once it has ended
in the site's own time zone, plus a grace period for the last late events."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

from views.catalogue import local_day_bounds

# Events may arrive a little after their day ended (a tracker retrying, a slow network).
# The hourly DAG's runs start this many minutes past the hour and process the midnights
# of the hour before, so every day is computed at least this long after it ended.
GRACE = timedelta(minutes=15)


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
