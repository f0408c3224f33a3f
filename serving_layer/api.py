"""REST reports: parse the request, call the reports facade, answer JSON."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, jsonify, request

from serving_layer.reports import ReportError, breakdown_report, realtime_report, traffic_report

bp = Blueprint("reports", __name__, url_prefix="/api/v1")


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


class UnknownSite(LookupError):
    pass


@bp.errorhandler(ReportError)
def _bad_request(exc: ReportError):
    return jsonify(error=str(exc)), 400


@bp.errorhandler(UnknownSite)
def _not_found(exc: UnknownSite):
    return jsonify(error=f"unknown site {exc.args[0]!r}"), 404


def _site_request(site: str, default_metrics: str) -> tuple[Any, str, datetime, datetime, list[str]]:
    """The store, the site's zone, the [from, to) range and the metrics a request asks for."""
    store = current_app.extensions["parallax.viewstore"]()
    tz = store.site_zone(site)
    if tz is None:
        raise UnknownSite(site)
    today = datetime.now(ZoneInfo(tz)).date().isoformat()
    start = parse_instant(request.args.get("from", today), "from", end_of_day=False, tz=tz)
    end = parse_instant(request.args.get("to", today), "to", end_of_day=True, tz=tz)
    metrics = [m.strip() for m in request.args.get("metrics", default_metrics).split(",") if m.strip()]
    return store, tz, start, end, metrics


@bp.get("/sites/<site>/report")
def report(site: str):
    store, tz, start, end, metrics = _site_request(site, "pageviews,visitors")
    granularity = request.args.get("granularity", "hour")
    return jsonify(traffic_report(store, site, metrics, start, end, granularity, tz))


@bp.get("/sites/<site>/breakdown")
def breakdown(site: str):
    """Top values of a dimension: ?dimension=page&metrics=visitors,pageviews&limit=10&from=&to="""
    store, tz, start, end, metrics = _site_request(site, "visitors,pageviews")
    try:
        limit = int(request.args.get("limit", "10"))
    except ValueError:
        raise ReportError("'limit' must be a whole number") from None
    dimension = request.args.get("dimension", "")
    return jsonify(breakdown_report(store, site, dimension, metrics, start, end, tz, limit))


@bp.get("/sites/<site>/realtime")
def realtime(site: str):
    """Visitors in the last 5 minutes and the current minute's counts, from the speed layer."""
    store = current_app.extensions["parallax.viewstore"]()
    tz = store.site_zone(site)
    if tz is None:
        raise UnknownSite(site)
    return jsonify(realtime_report(store, site, datetime.now(timezone.utc), tz))


def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ReportError(f"'day' must be a date (YYYY-MM-DD), got {value!r}") from None


@bp.get("/sites/<site>/drift")
def drift(site: str):
    """How far the speed views of a day (?day=YYYY-MM-DD in the site's zone, default
    yesterday) were from the batch layer's exact views, per measure."""
    store = current_app.extensions["parallax.viewstore"]()
    tz = store.site_zone(site)
    if tz is None:
        raise UnknownSite(site)
    yesterday = datetime.now(ZoneInfo(tz)).date() - timedelta(days=1)
    day = _parse_day(request.args.get("day") or yesterday.isoformat())
    measures = store.drift(site, day)
    for m in measures:
        m["difference"] = m["speed"] - m["batch"]
        m["relative"] = m["difference"] / m["batch"] if m["batch"] else None
    return jsonify(site=site, day=day.isoformat(), computed=bool(measures), measures=measures)


@bp.get("/speed/dropped")
def speed_dropped():
    """How many events the speed layer dropped behind its watermark on a UTC day
    (?day=YYYY-MM-DD, default today), per streaming query. The batch layer counts them."""
    day = _parse_day(request.args.get("day") or datetime.now(timezone.utc).date().isoformat())
    store = current_app.extensions["parallax.viewstore"]()
    return jsonify(day=day.isoformat(), dropped=store.dropped_late(day))


@bp.get("/health")
def health():
    return jsonify(status="ok")
