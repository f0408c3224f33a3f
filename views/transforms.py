"""The pure DataFrame transforms both layers run: the measures are written once, here.

Spark's DataFrame API runs the same code on streaming and static frames, so the speed
layer (Kafka stream) and the batch layer (master dataset) call these functions alike.
Where the layers must differ, the difference is one named parameter:
- ``exact_visitors``: streaming aggregation cannot count distinct values exactly, so the
  speed layer estimates visitors from the HLL sketch; the batch layer counts them exactly.
- ``within_watermark``: the speed layer can only remember event ids for its watermark.
"""
from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from schemas import ENRICHED_EVENT_DDL, enriched_event_ddl
from schemas.sources import CAMPAIGN_PARAMETERS, SOURCE_FIELDS, UTM_FIELDS
from views.catalogue import (
    DIMENSIONS,
    GOAL_VIEW,
    GRANULARITIES,
    NONE_VALUE,
    PROPERTY_VIEW_PREFIX,
    SEARCH_HOSTS,
    SESSION_DIMENSIONS,
    SOCIAL_HOSTS,
    TOTAL_DIM,
    TRAFFIC_VIEW,
)
from views.goals import Goal
from views.sketches import HLL_LG_K

# What an event needs to be counted at all.
KEY_FIELDS = ("event_id", "site", "ts")


def event_ddl(fields: Sequence[str] | None = None) -> str:
    """The enriched event's DDL, or the part of it with ``fields`` (and the key fields)."""
    return ENRICHED_EVENT_DDL if fields is None else enriched_event_ddl({*fields, *KEY_FIELDS})


def parse_events(raw: DataFrame, value_col: str = "value", fields: Sequence[str] | None = None) -> DataFrame:
    """Kafka/JSON strings -> typed events with an ``event_time``; unparseable rows dropped.

    A poison message (not JSON, or missing its key fields) becomes a null row and is
    filtered out here, so it never stops a stream. ``fields`` parses only those fields
    (and the key fields): a query that needs few of them spends less on JSON.
    """
    event = F.from_json(F.col(value_col).cast("string"), event_ddl(fields))
    # The key check is part of the expression that parses: as a Filter after the parse,
    # Spark's optimizer pushes it below the parse, which then runs once per key field too.
    countable = F.filter(F.array(event), lambda e: e["event_id"].isNotNull() & e["site"].isNotNull()
                         & e["ts"].isNotNull())
    return with_event_time(raw.select(F.inline(countable)))


def with_event_time(events: DataFrame) -> DataFrame:
    """Event time from the tracker's epoch milliseconds."""
    return events.withColumn("event_time", F.timestamp_millis(F.col("ts")))


def dedupe_events(events: DataFrame, *, within_watermark: bool) -> DataFrame:
    """Drop repeated ``event_id``s (tracker retries, page-hide beacons): exactly in batch,
    within the watermark in a stream (the caller sets the watermark on ``event_time``).

    A stream keys its state on the id and the event time. A resent event is the same
    event, with the same time, so every copy meets the first in the state until the
    watermark passes that time, and after that a copy is dropped as late anyway: Spark can
    forget each id as soon as the watermark passes it. ``dropDuplicatesWithinWatermark``
    on the id alone would keep each id for another watermark's length, and every
    micro-batch scans the whole state to evict: twice the state, twice the scan. Two
    events that share an id but not a time (no tracker sends them) both count in the
    speed layer; the batch layer keeps the first.
    """
    if within_watermark:
        return events.dropDuplicates(["event_id", "event_time"])
    return events.dropDuplicates(["event_id"])


def bucket_column(granularity: str, time_col: str = "event_time") -> Column:
    """What an event's bucket is grouped by, following the site's zone (``timezone``
    column) for hours and days: the same rule as ``views.catalogue.bucket_start``.

    Minutes are the same in every zone; they are grouped by the ``window()`` struct, the
    form a streaming aggregation needs to evict state behind the watermark (its ``start``
    is the bucket). Hours and days are grouped by their UTC start.
    """
    if granularity == "minute":
        return F.window(F.col(time_col), GRANULARITIES["minute"][0])
    local = F.from_utc_timestamp(F.col(time_col), F.col("timezone"))
    if granularity == "hour":
        # Floor the wall clock to the hour and take the instant's own offset back off, so
        # the two 01:00 hours of a DST fall-back night stay two buckets.
        offset = F.unix_seconds(local) - F.unix_seconds(F.col(time_col))
        return F.timestamp_seconds(F.unix_seconds(F.date_trunc("hour", local)) - offset)
    if granularity == "day":
        return F.to_utc_timestamp(F.date_trunc("day", local), F.col("timezone"))
    raise ValueError(f"unknown granularity {granularity!r}")


def local_date(events: DataFrame) -> Column:
    """The event's calendar day in its site's zone: the batch layer's unit of work."""
    return F.to_date(F.from_utc_timestamp(F.col("event_time"), F.col("timezone")))


def _host_matches(host: Column, suffixes: tuple[str, ...]) -> Column:
    """host is one of ``suffixes`` or a subdomain of it ("google." matches google.fr)."""
    cond = F.lit(False)
    for suffix in suffixes:
        if suffix.endswith("."):
            cond = cond | host.startswith(suffix) | host.contains("." + suffix)
        else:
            cond = cond | (host == suffix) | host.endswith("." + suffix)
    return cond


def query_param(url: Column, name: str) -> Column:
    """A query parameter of ``url``, URL-decoded; null when missing or empty (the rule of
    ``schemas.sources``)."""
    value = F.try_url_decode(F.try_parse_url(url, F.lit("QUERY"), F.lit(name)))
    return F.when(value != "", value)


def _referrer_parts(url: Column, referrer: Column) -> dict[str, Column]:
    """What the referrer source is decided from: the referrer's and the page's hosts, and
    whether the page URL is tagged as a campaign."""
    tagged = F.lit(False)
    for name in CAMPAIGN_PARAMETERS:
        tagged = tagged | query_param(url, name).isNotNull()
    return {
        "ref_host": F.lower(F.try_parse_url(referrer, F.lit("HOST"))),
        "page_host": F.lower(F.try_parse_url(url, F.lit("HOST"))),
        "tagged": tagged,
    }


def _referrer_class(ref_host: Column, page_host: Column, tagged: Column) -> Column:
    return (
        F.when(tagged, "campaign")
        .when(ref_host.isNull() | (ref_host == ""), "direct")
        .when(ref_host == page_host, "internal")
        .when(_host_matches(ref_host, SEARCH_HOSTS), "search")
        .when(_host_matches(ref_host, SOCIAL_HOSTS), "social")
        .otherwise("other sites")
    )


def referrer_source(url: Column, referrer: Column) -> Column:
    """search, social, campaign (tagged URL), direct (no referrer), internal, other sites:
    the rule of ``schemas.sources``, for events archived before the collector applied it.

    As one expression, the referrer's host is parsed again for each of the ~40 host tests
    (Spark does not share subexpressions across a CASE's branches): ``with_dimensions``
    derives the parts in a projection of their own and classifies those instead."""
    return _referrer_class(**_referrer_parts(url, referrer))


def _utm(name: str) -> Column:
    return F.coalesce(query_param(F.col("url"), name), F.lit(NONE_VALUE))


def _dim_col(name: str) -> str:
    return f"dim_{name}"


# Dimensions every event has a value of; the others are conditional (an element only for
# clicks and impressions, a goal only for conversions) or come from sessions.
CONDITIONAL_DIMENSIONS = ("element", GOAL_VIEW)


def _enriched(events: DataFrame, name: str) -> Column:
    """A field of the collector's enrichment; "(none)" where it is missing."""
    return F.coalesce(F.col(name), F.lit(NONE_VALUE)) if name in events.columns else F.lit(NONE_VALUE)


def with_dimensions(events: DataFrame) -> DataFrame:
    """The value of every event dimension of the catalogue, as one column each (``dim_<name>``).

    Derived once per event (URL parsing is the costly part): the batch layer derives them
    in its hour aggregation and rolls the days up from that.
    """
    # Where the visit came from: the collector's classification (schemas.sources); for
    # events archived before it classified, the same rule in Spark, parsed only for them.
    collected = all(field in events.columns for field in SOURCE_FIELDS)
    legacy = F.col("referrer_source").isNull() if collected else F.lit(True)
    parts = {f"_referrer_{name}": F.when(legacy, part)
             for name, part in _referrer_parts(F.col("url"), F.col("referrer")).items()}
    sources = {
        "referrer_source": _referrer_class(**{name.removeprefix("_referrer_"): F.col(name) for name in parts}),
        **{name: _utm(name) for name in UTM_FIELDS},
    }
    if collected:
        sources = {name: F.when(legacy, expr).otherwise(F.col(name)) for name, expr in sources.items()}
    fixed = {
        "page": F.coalesce(F.col("path"), F.lit(NONE_VALUE)),
        **sources,
        "country": _enriched(events, "country"),
        "device": _enriched(events, "device"),
        "browser": _enriched(events, "browser"),
        "os": _enriched(events, "os"),
        "event_name": F.coalesce(F.col("name"), F.col("type")),
    }
    assert set(fixed) == set(DIMENSIONS) - set(CONDITIONAL_DIMENSIONS) - set(SESSION_DIMENSIONS), \
        "every event dimension of the catalogue has its expression here"
    # The parts are a projection of their own, which Spark keeps (it does not inline an
    # expression used more than once), so each is computed once per event.
    with_parts = events.select("*", *(part.alias(name) for name, part in parts.items()))
    return with_parts.select("*", *(expr.alias(_dim_col(name)) for name, expr in fixed.items())).drop(*parts)


def goal_hits(goals: Sequence[Goal]) -> list[Column]:
    """One column per distinct goal (name, kind, pattern): the goal's name where the event
    converts it -- a pageview whose path matches a page goal's pattern, an event whose name
    matches an event goal, on a site that has the goal -- else null. Sites sharing a goal
    share its column, so an event is tested once per distinct goal, not once per site."""
    sites: dict[tuple[str, str, str], list[str]] = {}
    for g in goals:
        sites.setdefault((g.name, g.kind, g.pattern), []).append(g.site)
    hits = []
    for (name, kind, pattern), on in sorted(sites.items()):
        regex = Goal(on[0], name, kind, pattern).regex()
        if kind == "page":
            match = (F.col("type") == "pageview") & F.col("path").rlike(regex)
        else:
            match = F.coalesce(F.col("name"), F.col("type")) == F.lit(pattern)
        hits.append(F.when(F.col("site").isin(*sorted(set(on))) & match, F.lit(name)))
    return hits


def with_view_keys(events: DataFrame, goals: Sequence[Goal] = ()) -> DataFrame:
    """One row per event and view it counts in: (``view_name``, ``dim``) is ("traffic", "")
    for the site total, then (dimension, value) for every breakdown, ("element", name) for
    clicks and impressions of a marked element, ("goal", name) for every goal the event
    converts, and (``prop:<key>``, value) for every custom property. One aggregation then
    computes every view at once. Takes the output of ``with_dimensions`` (or adds it).

    Written without higher-order functions (filter, transform), which Spark evaluates row
    by row outside its generated code: the keys are one array -- the fixed views, a
    conditional element per goal, then the property map's entries -- exploded with their
    position, whose nulls are filtered out and whose entries from the property map get
    their "prop:" prefix after the explode. Spark then runs the explode and the
    aggregation above it as generated code (about a quarter of the batch hour views' CPU).
    """
    if _dim_col("page") not in events.columns:
        events = with_dimensions(events)

    def vk(view: str, dim: Column) -> Column:
        return F.struct(F.lit(view).alias("view_name"), dim.alias("dim"))

    element = F.col("props").getItem("element")
    fixed = [c.removeprefix("dim_") for c in events.columns if c.startswith("dim_")]
    keys = [
        vk(TRAFFIC_VIEW, F.lit(TOTAL_DIM)),
        *(vk(name, F.col(_dim_col(name))) for name in fixed),
        F.when(F.col("type").isin("click", "impression") & element.isNotNull(), vk("element", element)),
        *(F.when(hit.isNotNull(), vk(GOAL_VIEW, hit)) for hit in goal_hits(goals)),
    ]
    # A property's entry (key, value) becomes (view_name, dim) by position; its prefix is
    # added below, where its position says it came from the map.
    props = F.map_entries(F.coalesce(F.col("props"), F.create_map().cast("map<string,string>")))
    key_type = "array<struct<view_name:string,dim:string>>"
    all_keys = F.concat(F.array(*keys).cast(key_type), props.cast(key_type))
    typed = [TYPE_CODE] if TYPE_CODE in events.columns else ["type"]
    needed = ["site", *typed, "visitor_id", "event_time"] + [c for c in events.columns
                                                             if c == "timezone" or c.startswith("_bucket_")]
    exploded = events.select(*needed, F.posexplode(all_keys).alias("_pos", "_vk")).where(F.col("_vk").isNotNull())
    is_prop = F.col("_pos") >= len(keys)
    return exploded.select(
        *needed,
        F.when(is_prop, F.concat(F.lit(PROPERTY_VIEW_PREFIX), F.col("_vk.view_name")))
        .otherwise(F.col("_vk.view_name")).alias("view_name"),
        F.when(is_prop, F.coalesce(F.col("_vk.dim"), F.lit(NONE_VALUE))).otherwise(F.col("_vk.dim")).alias("dim"))


def views(events: DataFrame, granularity: str, *, exact_visitors: bool, breakdowns: bool = True,
          goals: Sequence[Goal] = ()) -> DataFrame:
    """Every event view of the catalogue for one granularity: the site total and, if
    ``breakdowns``, every event dimension, element, goal and property.

    Output: site, view_name, dim, bucket and the EVENT_COLUMNS of ``views.catalogue``.
    """
    # The bucket is computed per event, before the explode multiplies the rows.
    events = with_bucket(events, granularity)
    keyed = with_view_keys(events, goals) if breakdowns else events.withColumn(
        "view_name", F.lit(TRAFFIC_VIEW)).withColumn("dim", F.lit(TOTAL_DIM))
    return traffic(keyed, granularity, exact_visitors=exact_visitors, keys=("view_name", "dim"))


COUNT_COLUMNS = ("pageviews", "events", "clicks", "impressions")


def with_bucket(events: DataFrame, granularity: str) -> DataFrame:
    """``events`` with their ``granularity`` bucket as a column (``_bucket_<granularity>``),
    so that it is computed once per event, not once per view the event counts in."""
    name = f"_bucket_{granularity}"
    return events if name in events.columns else events.withColumn(name, bucket_column(granularity))


def _bucket(events: DataFrame, granularity: str) -> Column:
    name = f"_bucket_{granularity}"
    return F.col(name) if name in events.columns else bucket_column(granularity)


# The event types the counts tell apart, and the column coding them as a byte (1, 2, 3;
# 0 for any other type): an aggregation over many rows per event compares the code more
# cheaply than the type's string (``with_type_code``).
COUNTED_TYPES = ("pageview", "click", "impression")
TYPE_CODE = "_type_code"


def with_type_code(events: DataFrame) -> DataFrame:
    """``events`` with ``TYPE_CODE``, which ``with_view_keys`` carries instead of ``type``."""
    code = F.lit(0)
    for i, t in enumerate(COUNTED_TYPES, 1):
        code = F.when(F.col("type") == F.lit(t), F.lit(i)).otherwise(code)
    return events.withColumn(TYPE_CODE, code.cast("byte"))


def _counts(events: DataFrame) -> list[Column]:
    """The event counts of a view row, from ``events`` (by ``TYPE_CODE`` if they have it)."""
    def of_type(t: str) -> Column:
        if TYPE_CODE in events.columns:
            return F.col(TYPE_CODE) == F.lit(COUNTED_TYPES.index(t) + 1)
        return F.col("type") == F.lit(t)
    return [F.count_if(of_type("pageview")).alias("pageviews"), F.count(F.lit(1)).alias("events"),
            F.count_if(of_type("click")).alias("clicks"), F.count_if(of_type("impression")).alias("impressions")]


def _view_row(grouped: DataFrame, keys: tuple[str, ...], visitors: Column) -> DataFrame:
    return grouped.select("site", *keys, "bucket", *(F.col(c).cast("long").alias(c) for c in ("pageviews", "events")),
                          visitors.cast("long").alias("visitors"), "visitors_sketch",
                          *(F.col(c).cast("long").alias(c) for c in ("clicks", "impressions")))


def traffic(events: DataFrame, granularity: str, *, exact_visitors: bool, keys: tuple[str, ...] = ()) -> DataFrame:
    """Pageviews and unique visitors per site and bucket, with the visitors' HLL sketch.

    Output: site, *keys, bucket (timestamp, bucket start), pageviews, events, visitors,
    visitors_sketch, clicks, impressions. Hours and days need the site's ``timezone`` column (see ``bucket_column``).
    """
    if exact_visitors:
        return views_from_partials(visitor_partials(events, granularity, keys), keys)
    # Streaming: one aggregation (update mode cannot chain two); visitors from the sketch.
    bucket = _bucket(events, granularity).alias("w" if granularity == "minute" else "bucket")
    grouped = events.groupBy(F.col("site"), *keys, bucket).agg(
        *_counts(events), F.hll_sketch_agg(F.col("visitor_id"), HLL_LG_K).alias("visitors_sketch"))
    if granularity == "minute":
        grouped = grouped.withColumn("bucket", F.col("w.start"))
    return _view_row(grouped, keys, F.hll_sketch_estimate(F.col("visitors_sketch")))


def visitor_partials(events: DataFrame, granularity: str, keys: tuple[str, ...]) -> DataFrame:
    """Exact counting's first step: the counts of each visitor in each view and bucket.

    Counting distinct visitors in two steps (per visitor, then per bucket) avoids
    count_distinct beside other aggregates, which makes Spark expand every row; and the
    partials of a fine granularity roll up into a coarser one without going back to the
    events (the batch layer's days: ``batch_layer.job.day_rollup``).
    """
    bucket = _bucket(events, granularity)
    if granularity == "minute":
        bucket = bucket["start"]
    zone = ["timezone"] if "timezone" in events.columns else []
    return events.groupBy("site", *keys, bucket.alias("bucket"), "visitor_id", *zone).agg(*_counts(events))


def views_from_partials(partials: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """The view rows of visitor partials: counts summed, visitors counted exactly, and the
    visitors' HLL sketch for later unions.

    The partials are clustered by the view row's key first: each row's sketch is then
    built in one task, rather than partial sketches being built per task, shuffled and
    merged (far more sketch work than the rows of one view row are worth)."""
    grouped = partials.repartition("site", *keys, "bucket").groupBy("site", *keys, "bucket").agg(
        *(F.sum(c).alias(c) for c in COUNT_COLUMNS), F.count(F.col("visitor_id")).alias("visitors"),
        F.hll_sketch_agg(F.col("visitor_id"), HLL_LG_K).alias("visitors_sketch"))
    return _view_row(grouped, keys, F.col("visitors"))


def session_rows(events: DataFrame, gap: str) -> DataFrame:
    """One row per session: a visitor's events on a site until ``gap`` (e.g. "30 minutes")
    passes without one. Spark's ``session_window`` does the grouping in both layers: exact
    on a static frame, closed sessions in append mode on a stream (behind the watermark).

    Output: site, visitor_id, [timezone,] start, end (first and last event), duration_ms,
    pageviews, events, entry_page and exit_page (paths of the first and last pageview; ties
    in time broken by event_id; "(none)" for a session without pageviews).
    """
    keys = ["site", "visitor_id"] + (["timezone"] if "timezone" in events.columns else [])
    pageview = F.col("type") == F.lit("pageview")
    ordered_path = F.when(pageview, F.struct("event_time", "event_id", "path"))
    grouped = events.groupBy(*keys, F.session_window(F.col("event_time"), gap).alias("session")).agg(
        F.min("event_time").alias("start"), F.max("event_time").alias("end"),
        F.count_if(pageview).alias("pageviews"), F.count(F.lit(1)).alias("events"),
        F.min(ordered_path).alias("first_pv"), F.max(ordered_path).alias("last_pv"))
    return grouped.select(
        *keys, "start", "end",
        (F.unix_millis(F.col("end")) - F.unix_millis(F.col("start"))).alias("duration_ms"),
        F.col("pageviews").cast("long").alias("pageviews"), F.col("events").cast("long").alias("events"),
        F.coalesce(F.col("first_pv.path"), F.lit(NONE_VALUE)).alias("entry_page"),
        F.coalesce(F.col("last_pv.path"), F.lit(NONE_VALUE)).alias("exit_page"),
    )


def session_views(sessions: DataFrame, granularity: str) -> DataFrame:
    """The session measures of the site total and the entry/exit page breakdowns, each
    session counted in the bucket where it started (hours and days need ``timezone``).

    Output: site, view_name, dim, bucket and the SESSION_COLUMNS of ``views.catalogue``.
    """
    key = "struct<view_name:string,dim:string>"
    keys = F.array(
        F.struct(F.lit(TRAFFIC_VIEW).alias("view_name"), F.lit(TOTAL_DIM).alias("dim")),
        *(F.struct(F.lit(name).alias("view_name"), F.col(name).alias("dim")) for name in SESSION_DIMENSIONS),
    ).cast(f"array<{key}>")
    bucket = bucket_column(granularity, "start")
    if granularity == "minute":
        bucket = bucket["start"]
    keyed = sessions.select("*", F.explode(keys).alias("_vk"), bucket.alias("bucket"))
    return keyed.groupBy("site", F.col("_vk.view_name").alias("view_name"), F.col("_vk.dim").alias("dim"),
                         "bucket").agg(
        F.count(F.lit(1)).alias("sessions"),
        F.count_if(F.col("pageviews") == 1).alias("bounces"),
        F.sum("duration_ms").alias("duration_ms"),
        F.sum("pageviews").alias("session_pageviews"),
    ).select("site", "view_name", "dim", "bucket", *(F.col(c).cast("long").alias(c) for c in
                                                    ("sessions", "bounces", "duration_ms", "session_pageviews")))
