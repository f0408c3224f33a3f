"""REST reports: parse the request, call the reports facade, answer JSON."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from serving_layer.access import Access
from serving_layer.api import API_PREFIX, Query, endpoint, prevalidated
from serving_layer.freshness import freshness
from serving_layer.params import metric_list, site_range, site_zone
from serving_layer.reports import (
    ReportError,
    answered_on_demand,
    breakdown_report,
    realtime_report,
    traffic_report,
)
from serving_layer.stores import ServingStore
from views.filters import Filter, FilterError, parse_filters

bp = Blueprint("reports", __name__, url_prefix=API_PREFIX)
Value = int | float | None


class RangeQuery(Query):
    from_: str | None = Field(None, alias="from", max_length=40,
                              description="a date of the site's zone (YYYY-MM-DD) or an ISO 8601 datetime; "
                                          "default today")
    to: str | None = Field(None, max_length=40, description="a date (included whole) or a datetime (excluded); "
                                                            "default today")


FILTERS_DOC = ("conditions that must all hold, ';'-separated: dimension==value, != (is not), =@ (contains), "
               "!@ (does not contain); e.g. page==/pricing;country==FR")


class ReportQuery(RangeQuery):
    metrics: str = Field("pageviews,visitors", max_length=300, description="comma-separated measures")
    granularity: Literal["minute", "hour", "day"] = "hour"
    filters: str | None = Field(None, max_length=1000, description=FILTERS_DOC)
    compare: Literal["previous_period", "previous_year"] | None = Field(
        None, description="add the same report for the previous period (as long, just before) or year")


class BreakdownQuery(RangeQuery):
    dimension: str = Field(max_length=100, description="a dimension, or prop:<key>")
    metrics: str = Field("visitors,pageviews", max_length=300)
    limit: int = Field(10, ge=1, le=1000)
    filters: str | None = Field(None, max_length=1000, description=FILTERS_DOC)


class SpeedFreshness(BaseModel):
    processed_through: str | None = Field(description="the newest event time the speed layer has processed")
    lag_records: int | None = Field(description="events in Kafka the speed layer has not read yet")
    lag_seconds: float | None = Field(description="how long the oldest of them has waited")
    stalled: bool = Field(description="behind, and no progress for the configured time")
    stalled_since: str | None
    last_progress: str | None
    last_report: str | None
    measured_at: str
    problem: str | None


GAPS_DOC = ("days (YYYY-MM-DD, the site's zone) since the site's first day that no batch run has computed "
            "although a later day was: not final, and the boundary cannot pass them until they are computed")


class Freshness(BaseModel):
    batch_boundary: str | None = Field(description="buckets before it are final (the batch layer's exact views)")
    batch_gaps: list[str] = Field(description=GAPS_DOC)
    speed: SpeedFreshness


class Bucket(BaseModel):
    model_config = ConfigDict(extra="allow")
    start: str
    final: bool


class Comparison(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    compare: str
    from_: str = Field(alias="from")
    to: str
    computed_from: str
    buckets: list[Bucket]
    totals: dict[str, Value]
    change: dict[str, float | None] = Field(description="each total's relative change against the comparison")
    gaps: list[str] = Field(description=f"in this range, the {GAPS_DOC}")


class Report(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    site: str
    timezone: str
    boundary: str | None
    granularity: str
    from_: str = Field(alias="from")
    to: str
    metrics: list[str]
    filters: list[str]
    computed_from: Literal["views", "archive"] = Field(
        description="views: the layers' stored views; archive: computed on demand from the master dataset")
    buckets: list[Bucket]
    totals: dict[str, Value]
    gaps: list[str] = Field(description=f"in this range, the {GAPS_DOC}")
    unavailable: dict[str, str] | None = Field(None, description="metrics this filter cannot give (null), and why")
    archive_as_of: str | None = Field(None, description="computed from the archive: its commit the answer holds")
    comparison: Comparison | None = None
    freshness: Freshness


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
    final: bool = Field(description="the whole range is before the boundary, with no gap")
    gaps: list[str] = Field(description=f"in this range, the {GAPS_DOC}")
    from_: str = Field(alias="from")
    to: str
    metrics: list[str]
    filters: list[str]
    computed_from: Literal["views", "archive"]
    rows: list[Row]
    other: Other | None
    deprecated: str | None = None
    archive_as_of: str | None = Field(None, description="computed from the archive: its commit the answer holds")
    freshness: Freshness


class Minute(BaseModel):
    start: str
    pageviews: Value
    events: Value
    visitors: Value


class PageNow(BaseModel):
    value: str = Field(description="the page's path")
    pageviews: Value
    visitors: Value


class Realtime(BaseModel):
    site: str
    timezone: str
    at: str
    visitors_last_5_minutes: int
    current_minute: Minute
    minutes: list[Minute]
    pages: list[PageNow] = Field(description="the pages viewed most in those minutes, by pageviews")
    freshness: Freshness


def _filters(text: str | None) -> tuple[Filter, ...]:
    try:
        return parse_filters(text)
    except FilterError as exc:
        raise ReportError(str(exc), "filters") from None


def _freshness(store: ServingStore, site: str, tz: str) -> dict[str, Any]:
    monitor = current_app.extensions["parallax.freshness"]
    state = store.boundary_state(site)
    return freshness(state.boundary, monitor.speed(), ZoneInfo(tz), state.gaps)


def _versions(store: ServingStore, site: str, end: datetime, on_demand: bool) -> tuple[Any, ...]:
    """What a report ending at ``end`` was computed from (``serving_layer.cache``): the
    site's batch views (its boundary, last run and gaps), and the speed views if the range
    reaches past the boundary (a comparison's reaches back further, never past); or the
    master dataset, if on demand (its version looked at most every ``archive_refresh_s``)."""
    state = store.boundary_state(site)
    if on_demand:
        return *state, store.archive_version()
    boundary = state.boundary
    live = current_app.extensions["parallax.freshness"].speed().version if boundary is None or end > boundary else None
    return *state, live


@dataclass(frozen=True)
class Answer:
    """A computed answer, validated against its model, and its JSON, kept together: a kept
    answer is neither validated nor encoded again (its freshness is, each time)."""
    body: dict[str, Any]
    encoded: bytes

    @classmethod
    def of(cls, body: dict[str, Any], model: type[BaseModel]) -> Answer:
        model.model_validate({**body, "freshness": _SOME_FRESHNESS})
        return cls(body, json.dumps(body, separators=(",", ":")).encode())


# Stands for the freshness an answer gets when sent, to validate the rest of it once.
_SOME_FRESHNESS = {"batch_boundary": None, "batch_gaps": [], "speed": {
    "processed_through": None, "lag_records": None, "lag_seconds": None, "stalled": False, "stalled_since": None,
    "last_progress": None, "last_report": None, "measured_at": "1970-01-01T00:00:00+00:00", "problem": None}}


def _cached(question: tuple[Any, ...], versions: tuple[Any, ...], compute: Callable[[], dict[str, Any]],
            model: type[BaseModel], on_demand: bool) -> Answer:
    """The answer to ``question`` from the data at ``versions``; one computed on demand is
    refreshed in the background, the earlier one given meanwhile."""
    return current_app.extensions["parallax.answers"].get((*question, *versions), lambda: Answer.of(compute(), model),
                                                          question if on_demand else None)


def _respond(answer: Answer, fresh: dict[str, Any]) -> Response:
    """The answer with its freshness now (measured apart: it changes more often)."""
    Freshness.model_validate(fresh)
    prevalidated()
    body = answer.encoded[:-1] + b',"freshness":' + json.dumps(fresh, separators=(",", ":")).encode() + b"}"
    return Response(body, mimetype="application/json")


def report_answer(site: str, q: ReportQuery) -> tuple[Answer, dict[str, Any]]:
    """The report a query asks for (kept while its data is unchanged), and its freshness."""
    store, tz, start, end = site_range(site, q.from_, q.to)
    filters = _filters(q.filters)
    on_demand = answered_on_demand(filters)
    question = ("report", site, tz, start, end, q.metrics, q.granularity, filters, q.compare)
    answer = _cached(question, _versions(store, site, end, on_demand),
                     lambda: traffic_report(store, site, metric_list(q.metrics), start, end, q.granularity, tz,
                                            filters=filters, compare=q.compare), Report, on_demand)
    return answer, _freshness(store, site, tz)


def breakdown_answer(site: str, q: BreakdownQuery) -> tuple[Answer, dict[str, Any]]:
    """The breakdown a query asks for (kept while its data is unchanged), and its freshness."""
    store, tz, start, end = site_range(site, q.from_, q.to)
    filters = _filters(q.filters)
    on_demand = answered_on_demand(filters, q.dimension)
    question = ("breakdown", site, tz, start, end, q.dimension, q.metrics, q.limit, filters)
    answer = _cached(question, _versions(store, site, end, on_demand),
                     lambda: breakdown_report(store, site, q.dimension, metric_list(q.metrics), start, end, tz,
                                              q.limit, filters=filters), Breakdown, on_demand)
    return answer, _freshness(store, site, tz)


@endpoint(bp, "GET", "/sites/<site>/report", Access.SITE_VIEWER, query=ReportQuery, ok=Report, tags=["reports"])
def report(site: str) -> Response:
    """Measures per bucket and in total over a range: batch views before the site's
    boundary (final), speed views after it; filtered, compared, with its freshness."""
    return _respond(*report_answer(site, request.context.query))  # type: ignore[attr-defined]


@endpoint(bp, "GET", "/sites/<site>/breakdown", Access.SITE_VIEWER, query=BreakdownQuery, ok=Breakdown,
          tags=["reports"])
def breakdown(site: str) -> Response:
    """The top values of a dimension over a range, by the first metric; the rest as "(other)"."""
    return _respond(*breakdown_answer(site, request.context.query))  # type: ignore[attr-defined]


@endpoint(bp, "GET", "/sites/<site>/realtime", Access.SITE_VIEWER, ok=Realtime, tags=["reports"])
def realtime(site: str) -> Response:
    """Visitors in the last 5 minutes, the current minute's counts and the pages being
    viewed, from the speed layer."""
    store, tz = site_zone(site)
    return jsonify({**realtime_report(store, site, datetime.now(timezone.utc), tz),
                    "freshness": _freshness(store, site, tz)})
