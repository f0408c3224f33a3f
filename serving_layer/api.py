"""REST reports: parse the request, call the reports facade, answer JSON."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from flask import Blueprint, current_app, jsonify, request

from serving_layer.reports import ReportError, traffic_report

bp = Blueprint("reports", __name__, url_prefix="/api/v1")


def parse_instant(value: str, name: str, *, end_of_day: bool) -> datetime:
    """A date (a whole day: ``to`` includes it) or an ISO datetime (UTC if no offset)."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime.combine(day, time.min, tzinfo=timezone.utc)
            return start + timedelta(days=1) if end_of_day else start
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"'{name}' must be a date (YYYY-MM-DD) or an ISO 8601 datetime, got {value!r}") from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


@bp.errorhandler(ReportError)
def _bad_request(exc: ReportError):
    return jsonify(error=str(exc)), 400


@bp.get("/sites/<site>/report")
def report(site: str):
    store = current_app.extensions["parallax.viewstore"]()
    if not store.site_exists(site):
        return jsonify(error=f"unknown site {site!r}"), 404
    today = datetime.now(timezone.utc).date().isoformat()
    start = parse_instant(request.args.get("from", today), "from", end_of_day=False)
    end = parse_instant(request.args.get("to", today), "to", end_of_day=True)
    metrics = [m.strip() for m in request.args.get("metrics", "pageviews,visitors").split(",") if m.strip()]
    granularity = request.args.get("granularity", "hour")
    return jsonify(traffic_report(store, site, metrics, start, end, granularity))


@bp.get("/health")
def health():
    return jsonify(status="ok")
