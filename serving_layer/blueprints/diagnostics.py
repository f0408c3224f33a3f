"""How far the live numbers were from the corrected ones: a day's drift, the events the
speed layer dropped behind its watermark; and the serving layer's health."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, jsonify, request

from serving_layer.params import parse_day, site_zone, store

bp = Blueprint("diagnostics", __name__, url_prefix="/api/v1")


@bp.get("/sites/<site>/drift")
def drift(site: str) -> Response:
    """How far the speed views of a day (?day=YYYY-MM-DD in the site's zone, default
    yesterday) were from the batch layer's exact views, per measure."""
    s, tz = site_zone(site)
    yesterday = datetime.now(ZoneInfo(tz)).date() - timedelta(days=1)
    day = parse_day(request.args.get("day") or yesterday.isoformat())
    measures = s.drift(site, day)
    for m in measures:
        m["difference"] = m["speed"] - m["batch"]
        m["relative"] = m["difference"] / m["batch"] if m["batch"] else None
    return jsonify(site=site, day=day.isoformat(), computed=bool(measures), measures=measures)


@bp.get("/speed/dropped")
def speed_dropped() -> Response:
    """How many events the speed layer dropped behind its watermark on a UTC day
    (?day=YYYY-MM-DD, default today), per streaming query. The batch layer counts them."""
    day = parse_day(request.args.get("day") or datetime.now(timezone.utc).date().isoformat())
    return jsonify(day=day.isoformat(), dropped=store().dropped_late(day))


@bp.get("/health")
def health() -> Response:
    return jsonify(status="ok")
