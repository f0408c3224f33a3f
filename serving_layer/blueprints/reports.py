"""REST reports: parse the request, call the reports facade, answer JSON."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, jsonify, request

from serving_layer.params import site_range, site_zone
from serving_layer.reports import ReportError, breakdown_report, realtime_report, traffic_report

bp = Blueprint("reports", __name__, url_prefix="/api/v1")


@bp.get("/sites/<site>/report")
def report(site: str) -> Response:
    store, tz, start, end, metrics = site_range(site, "pageviews,visitors")
    granularity = request.args.get("granularity", "hour")
    return jsonify(traffic_report(store, site, metrics, start, end, granularity, tz))


@bp.get("/sites/<site>/breakdown")
def breakdown(site: str) -> Response:
    """Top values of a dimension: ?dimension=page&metrics=visitors,pageviews&limit=10&from=&to="""
    store, tz, start, end, metrics = site_range(site, "visitors,pageviews")
    try:
        limit = int(request.args.get("limit", "10"))
    except ValueError:
        raise ReportError("'limit' must be a whole number") from None
    dimension = request.args.get("dimension", "")
    return jsonify(breakdown_report(store, site, dimension, metrics, start, end, tz, limit))


@bp.get("/sites/<site>/realtime")
def realtime(site: str) -> Response:
    """Visitors in the last 5 minutes and the current minute's counts, from the speed layer."""
    store, tz = site_zone(site)
    return jsonify(realtime_report(store, site, datetime.now(timezone.utc), tz))
