"""What the report routes read from a request: the site (unknown and forbidden alike are
404), a range in the site's zone, the metrics asked for."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import current_app, request

from serving_layer.reports import ReportError
from serving_layer.stores import ServingStore


class UnknownSite(LookupError):
    pass


def store() -> ServingStore:
    return current_app.extensions["parallax.store"]()


def site_zone(site: str) -> tuple[ServingStore, str]:
    """The store and the site's zone; ``UnknownSite`` if it is not registered."""
    s = store()
    tz = s.site_zone(site)
    if tz is None:
        raise UnknownSite(site)
    return s, tz


def parse_instant(value: str, name: str, *, end_of_day: bool, tz: str) -> datetime:
    """A date, a whole day of the site's zone (``to`` includes it), or an ISO 8601
    datetime (in the site's zone when it has no offset); returned in UTC."""
    zone = ZoneInfo(tz)
    try:
        if len(value) == 10:
            day = date.fromisoformat(value) + (timedelta(days=1) if end_of_day else timedelta())
            return datetime.combine(day, time.min, tzinfo=zone).astimezone(timezone.utc)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"'{name}' must be a date (YYYY-MM-DD) or an ISO 8601 datetime, got {value!r}") from None
    return (parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed).astimezone(timezone.utc)


def site_range(site: str, default_metrics: str) -> tuple[ServingStore, str, datetime, datetime, list[str]]:
    """The store, the site's zone, the [from, to) range and the metrics a request asks for."""
    s, tz = site_zone(site)
    today = datetime.now(ZoneInfo(tz)).date().isoformat()
    start = parse_instant(request.args.get("from", today), "from", end_of_day=False, tz=tz)
    end = parse_instant(request.args.get("to", today), "to", end_of_day=True, tz=tz)
    metrics = [m.strip() for m in request.args.get("metrics", default_metrics).split(",") if m.strip()]
    return s, tz, start, end, metrics


def parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ReportError(f"'day' must be a date (YYYY-MM-DD), got {value!r}") from None
