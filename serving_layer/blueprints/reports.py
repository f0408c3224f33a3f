"""REST reports: parse the request, call the reports facade, answer JSON."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from serving_layer.access import Access
from serving_layer.api import API_PREFIX, Query, endpoint
from serving_layer.params import metric_list, site_range, site_zone
from serving_layer.reports import breakdown_report, realtime_report, traffic_report

bp = Blueprint("reports", __name__, url_prefix=API_PREFIX)
Value = int | float | None


class RangeQuery(Query):
    from_: str | None = Field(None, alias="from", max_length=40,
                              description="a date of the site's zone (YYYY-MM-DD) or an ISO 8601 datetime; "
                                          "default today")
    to: str | None = Field(None, max_length=40, description="a date (included whole) or a datetime (excluded); "
                                                            "default today")


class ReportQuery(RangeQuery):
    metrics: str = Field("pageviews,visitors", max_length=500, description="comma-separated measures")
    granularity: Literal["minute", "hour", "day"] = "hour"


class BreakdownQuery(RangeQuery):
    dimension: str = Field(max_length=100, description="a dimension, or prop:<key>")
    metrics: str = Field("visitors,pageviews", max_length=500)
    limit: int = Field(10, ge=1, le=1000)


class Bucket(BaseModel):
    model_config = ConfigDict(extra="allow")
    start: str
    final: bool


class Report(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    site: str
    timezone: str
    boundary: str | None
    granularity: str
    from_: str = Field(alias="from")
    to: str
    metrics: list[str]
    buckets: list[Bucket]
    totals: dict[str, Value]


class Row(BaseModel):
    model_config = ConfigDict(extra="allow")
    value: str


class Other(Row):
    values: int


class Breakdown(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    site: str
    timezone: str
    dimension: str
    boundary: str | None
    final: bool
    from_: str = Field(alias="from")
    to: str
    metrics: list[str]
    rows: list[Row]
    other: Other | None
    deprecated: str | None = None


class Minute(BaseModel):
    start: str
    pageviews: Value
    events: Value
    visitors: Value


class Realtime(BaseModel):
    site: str
    timezone: str
    at: str
    visitors_last_5_minutes: int
    current_minute: Minute
    minutes: list[Minute]


@endpoint(bp, "GET", "/sites/<site>/report", Access.SITE_VIEWER, query=ReportQuery, ok=Report, tags=["reports"])
def report(site: str) -> Response:
    """Measures per bucket and in total over a range: batch views before the site's
    boundary (final), speed views after it."""
    q: ReportQuery = request.context.query  # type: ignore[attr-defined]
    store, tz, start, end = site_range(site, q.from_, q.to)
    return jsonify(traffic_report(store, site, metric_list(q.metrics), start, end, q.granularity, tz))


@endpoint(bp, "GET", "/sites/<site>/breakdown", Access.SITE_VIEWER, query=BreakdownQuery, ok=Breakdown,
          tags=["reports"])
def breakdown(site: str) -> Response:
    """The top values of a dimension over a range, by the first metric; the rest as "(other)"."""
    q: BreakdownQuery = request.context.query  # type: ignore[attr-defined]
    store, tz, start, end = site_range(site, q.from_, q.to)
    return jsonify(breakdown_report(store, site, q.dimension, metric_list(q.metrics), start, end, tz, q.limit))


@endpoint(bp, "GET", "/sites/<site>/realtime", Access.SITE_VIEWER, ok=Realtime, tags=["reports"])
def realtime(site: str) -> Response:
    """Visitors in the last 5 minutes and the current minute's counts, from the speed layer."""
    store, tz = site_zone(site)
    return jsonify(realtime_report(store, site, datetime.now(timezone.utc), tz))
