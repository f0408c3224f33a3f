"""How far the live numbers were from the corrected ones: a day's drift, the events the
speed layer dropped behind its watermark; and the serving layer's health."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from pydantic import BaseModel, Field

from serving_layer.access import Access
from serving_layer.api import API_PREFIX, Query, endpoint
from serving_layer.params import parse_day, site_zone, store

bp = Blueprint("diagnostics", __name__, url_prefix=API_PREFIX)


class DayQuery(Query):
    day: str | None = Field(None, max_length=10, description="YYYY-MM-DD")


class DriftMeasure(BaseModel):
    measure: str
    speed: int
    batch: int
    speed_minutes: int
    batch_minutes: int
    minutes_differing: int
    computed_at: str
    difference: int
    relative: float | None


class Drift(BaseModel):
    site: str
    day: str
    computed: bool
    measures: list[DriftMeasure]


class Dropped(BaseModel):
    day: str
    dropped: dict[str, int]


class LateDayAnswer(BaseModel):
    day: str = Field(description="the day, in the site's time zone")
    events: int = Field(description="events committed after the day's last batch run")
    newest_commit: str
    status: str = Field(description="recomputing: the hourly late-data DAG takes it in; too_old: older than the "
                                    "limit, a reprocess run takes it in")


class LateEventsAnswer(BaseModel):
    site: str
    limit_days: int
    days: list[LateDayAnswer]


class Health(BaseModel):
    status: str


@endpoint(bp, "GET", "/sites/<site>/drift", Access.SITE_VIEWER, query=DayQuery, ok=Drift, tags=["diagnostics"])
def drift(site: str) -> Response:
    """How far the speed views of a day (?day=YYYY-MM-DD in the site's zone, default
    yesterday) were from the batch layer's exact views, per measure."""
    q: DayQuery = request.context.query  # type: ignore[attr-defined]
    s, tz = site_zone(site)
    yesterday = datetime.now(ZoneInfo(tz)).date() - timedelta(days=1)
    day = parse_day(q.day or yesterday.isoformat())
    measures = s.drift(site, day)
    for m in measures:
        m["difference"] = m["speed"] - m["batch"]
        m["relative"] = m["difference"] / m["batch"] if m["batch"] else None
    return jsonify(site=site, day=day.isoformat(), computed=bool(measures), measures=measures)


@endpoint(bp, "GET", "/sites/<site>/late-events", Access.SITE_VIEWER, ok=LateEventsAnswer, tags=["diagnostics"])
def late_events(site: str) -> Response:
    """The site's days whose batch views miss events the master dataset received after the
    day was computed: those up to the limit are being recomputed (hourly), older ones wait
    for a reprocess run."""
    s, tz = site_zone(site)
    limit = current_app.extensions["parallax.settings"].batch.late_limit_days
    oldest = datetime.now(ZoneInfo(tz)).date() - timedelta(days=limit)
    days = [{"day": d.day.isoformat(), "events": d.events, "newest_commit": d.newest_commit.isoformat(),
             "status": "recomputing" if d.day >= oldest else "too_old"} for d in s.late_events(site)]
    return jsonify(site=site, limit_days=limit, days=days)


@endpoint(bp, "GET", "/metrics", Access.ADMIN, tags=["diagnostics"])
def metrics() -> Response:
    """Prometheus metrics of the batch side (admins; scrape with a token): per site, the late
    events its batch views miss, by status (``recomputing`` or ``too_old``)."""
    s = store()
    limit = current_app.extensions["parallax.settings"].batch.late_limit_days
    registry = CollectorRegistry()
    late = Gauge("parallax_late_events", "Events committed to the master dataset after their day's batch run, "
                 "not yet taken in by a run", ["site", "status"], registry=registry)
    for site, tz in s.registry.site_zones().items():
        oldest = datetime.now(ZoneInfo(tz)).date() - timedelta(days=limit)
        counts = {"recomputing": 0, "too_old": 0}
        for d in s.late_events(site):
            counts["recomputing" if d.day >= oldest else "too_old"] += d.events
        for status, n in counts.items():
            late.labels(site, status).set(n)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


@endpoint(bp, "GET", "/speed/dropped", Access.ADMIN, query=DayQuery, ok=Dropped, tags=["diagnostics"])
def speed_dropped() -> Response:
    """How many events the speed layer dropped behind its watermark on a UTC day
    (?day=YYYY-MM-DD, default today), per streaming query, over every site (admins). The
    batch layer counts them."""
    q: DayQuery = request.context.query  # type: ignore[attr-defined]
    day = parse_day(q.day or datetime.now(timezone.utc).date().isoformat())
    return jsonify(day=day.isoformat(), dropped=store().dropped_late(day))


@endpoint(bp, "GET", "/health", Access.PUBLIC, ok=Health, uses_store=False, tags=["diagnostics"])
def health() -> Response:
    return jsonify(status="ok")
