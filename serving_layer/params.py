"""What the routes read from a request: the site (unknown and forbidden alike are 404), a
range in the site's zone, the metrics asked for."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import current_app

from serving_layer.access import unknown_site
from serving_layer.reports import ReportError
from serving_layer.stores import ServingStore

# The dates a report may name: far enough back for any archive, and forward for any plan.
EARLIEST, LATEST = date(1970, 1, 1), date(2100, 12, 31)


def store() -> ServingStore:
    return current_app.extensions["parallax.store"]()


def site_zone(site: str) -> tuple[ServingStore, str]:
    """The store and the site's zone; 404 if it is not registered."""
    s = store()
    tz = s.site_zone(site)
    if tz is None:
        raise unknown_site(site)
    return s, tz


def parse_instant(value: str, name: str, *, end_of_day: bool, tz: str) -> datetime:
    """A date, a whole day of the site's zone (``to`` includes it), or an ISO 8601
    datetime (in the site's zone when it has no offset); returned in UTC."""
    zone = ZoneInfo(tz)
    try:
        parsed = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"'{name}' must be a date (YYYY-MM-DD) or an ISO 8601 datetime, got {value!r}") from None
    if isinstance(parsed, datetime):
        _in_bounds(parsed.date(), name, value)
        return (parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed).astimezone(timezone.utc)
    _in_bounds(parsed, name, value)
    day = parsed + (timedelta(days=1) if end_of_day else timedelta())
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(timezone.utc)


def _in_bounds(day: date, name: str, value: str) -> None:
    if not EARLIEST <= day <= LATEST:
        raise ReportError(f"'{name}' must be between {EARLIEST} and {LATEST}, got {value!r}")


def site_range(site: str, start: str | None, end: str | None) -> tuple[ServingStore, str, datetime, datetime]:
    """The store, the site's zone and the [from, to) range a request asks for (default: today)."""
    s, tz = site_zone(site)
    today = datetime.now(ZoneInfo(tz)).date().isoformat()
    return s, tz, parse_instant(start or today, "from", end_of_day=False, tz=tz), \
        parse_instant(end or today, "to", end_of_day=True, tz=tz)


def metric_list(value: str) -> list[str]:
    return [m.strip() for m in value.split(",") if m.strip()]


def parse_day(value: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ReportError(f"'day' must be a date (YYYY-MM-DD), got {value!r}") from None
    _in_bounds(day, "day", value)
    return day
