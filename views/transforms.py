"""The pure DataFrame transforms both layers run: the measures are written once, here.

Spark's DataFrame API runs the same code on streaming and static frames, so the speed
layer (Kafka stream) and the batch layer (master dataset) call these functions alike.
Where the layers must differ, the difference is one named parameter:
- ``exact_visitors``: streaming aggregation cannot count distinct values exactly, so the
  speed layer estimates visitors from the HLL sketch; the batch layer counts them exactly.
- ``within_watermark``: the speed layer can only remember event ids for its watermark.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from schemas import ENRICHED_EVENT_DDL
from views.catalogue import (
    DIMENSIONS,
    GRANULARITIES,
    NONE_VALUE,
    PROPERTY_VIEW_PREFIX,
    SEARCH_HOSTS,
    SOCIAL_HOSTS,
    TOTAL_DIM,
    TRAFFIC_VIEW,
)

# lg_config_k of the visitor sketches: 2^12 registers, ~1.6% standard error. Fixed, because
# only sketches built with the same parameter merge without losing precision.
HLL_LG_K = 12


def parse_events(raw: DataFrame, value_col: str = "value") -> DataFrame:
    """Kafka/JSON strings -> typed events with an ``event_time``; unparseable rows dropped.

    A poison message (not JSON, or missing its key fields) becomes a null row and is
    filtered out here, so it never stops a stream.
    """
    parsed = raw.select(F.from_json(F.col(value_col).cast("string"), ENRICHED_EVENT_DDL).alias("e")).select("e.*")
    return with_event_time(
        parsed.where(F.col("event_id").isNotNull() & F.col("site").isNotNull() & F.col("ts").isNotNull())
    )


def with_event_time(events: DataFrame) -> DataFrame:
    """Event time from the tracker's epoch milliseconds."""
    return events.withColumn("event_time", F.timestamp_millis(F.col("ts")))


def dedupe_events(events: DataFrame, *, within_watermark: bool) -> DataFrame:
    """Drop repeated ``event_id``s (tracker retries): exactly in batch, within the watermark
    in a stream (the caller sets the watermark on ``event_time``)."""
    if within_watermark:
        return events.dropDuplicatesWithinWatermark(["event_id"])
    return events.dropDuplicates(["event_id"])


def bucket_column(granularity: str) -> Column:
    """What an event's bucket is grouped by, following the site's zone (``timezone``
    column) for hours and days: the same rule as ``views.catalogue.bucket_start``.

    Minutes are the same in every zone; they are grouped by the ``window()`` struct, the
    form a streaming aggregation needs to evict state behind the watermark (its ``start``
    is the bucket). Hours and days are grouped by their UTC start.
    """
    if granularity == "minute":
        return F.window(F.col("event_time"), GRANULARITIES["minute"][0])
    local = F.from_utc_timestamp(F.col("event_time"), F.col("timezone"))
    if granularity == "hour":
        # Floor the wall clock to the hour and take the instant's own offset back off, so
        # the two 01:00 hours of a DST fall-back night stay two buckets.
        offset = F.unix_seconds(local) - F.unix_seconds(F.col("event_time"))
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


def referrer_source(url: Column, referrer: Column) -> Column:
    """search, social, campaign (tagged URL), direct (no referrer), internal, other sites."""
    ref_host = F.lower(F.try_parse_url(referrer, F.lit("HOST")))
    page_host = F.lower(F.try_parse_url(url, F.lit("HOST")))
    tagged = F.try_parse_url(url, F.lit("QUERY"), F.lit("utm_source")).isNotNull() | \
        F.try_parse_url(url, F.lit("QUERY"), F.lit("gclid")).isNotNull()
    return (
        F.when(tagged, "campaign")
        .when(ref_host.isNull() | (ref_host == ""), "direct")
        .when(ref_host == page_host, "internal")
        .when(_host_matches(ref_host, SEARCH_HOSTS), "search")
        .when(_host_matches(ref_host, SOCIAL_HOSTS), "social")
        .otherwise("other sites")
    )


def _utm(name: str) -> Column:
    return F.coalesce(F.try_parse_url(F.col("url"), F.lit("QUERY"), F.lit(name)), F.lit(NONE_VALUE))


def _dim_col(name: str) -> str:
    return f"dim_{name}"


def with_dimensions(events: DataFrame) -> DataFrame:
    """The value of every catalogue dimension, as one column each (``dim_<name>``).

    Derived once per event (URL parsing is the costly part); the batch layer caches the
    result and aggregates every granularity from it.
    """
    fixed = {
        "page": F.coalesce(F.col("path"), F.lit(NONE_VALUE)),
        "referrer_source": referrer_source(F.col("url"), F.col("referrer")),
        "utm_source": _utm("utm_source"),
        "utm_medium": _utm("utm_medium"),
        "utm_campaign": _utm("utm_campaign"),
        "event_name": F.coalesce(F.col("name"), F.col("type")),
    }
    assert set(fixed) == set(DIMENSIONS), "every dimension of the catalogue has its expression here"
    return events.select("*", *(expr.alias(_dim_col(name)) for name, expr in fixed.items()))


def with_view_keys(events: DataFrame) -> DataFrame:
    """One row per event and view it counts in: (``view_name``, ``dim``) is ("traffic", "")
    for the site total, then (dimension, value) for every breakdown and (``prop:<key>``,
    value) for every custom property. One aggregation then computes every view at once.
    Takes the output of ``with_dimensions`` (or adds it)."""
    if _dim_col("page") not in events.columns:
        events = with_dimensions(events)
    key = "struct<view_name:string,dim:string>"
    keys = F.array(
        F.struct(F.lit(TRAFFIC_VIEW).alias("view_name"), F.lit(TOTAL_DIM).alias("dim")),
        *(F.struct(F.lit(name).alias("view_name"), F.col(_dim_col(name)).alias("dim")) for name in DIMENSIONS),
    ).cast(f"array<{key}>")
    props = F.transform(
        F.map_entries(F.coalesce(F.col("props"), F.create_map().cast("map<string,string>"))),
        lambda e: F.struct(F.concat(F.lit(PROPERTY_VIEW_PREFIX), e["key"]).alias("view_name"),
                           F.coalesce(e["value"], F.lit(NONE_VALUE)).alias("dim")),
    ).cast(f"array<{key}>")
    needed = ["site", "type", "visitor_id", "event_time"] + (["timezone"] if "timezone" in events.columns else [])
    return events.select(*needed, F.explode(F.concat(keys, props)).alias("_vk")).select(
        *needed, F.col("_vk.view_name").alias("view_name"), F.col("_vk.dim").alias("dim"))


def views(events: DataFrame, granularity: str, *, exact_visitors: bool, breakdowns: bool = True) -> DataFrame:
    """Every view of the catalogue for one granularity: the site total and, if
    ``breakdowns``, every dimension and property.

    Output: site, view_name, dim, bucket, pageviews, events, visitors, visitors_sketch.
    """
    keyed = with_view_keys(events) if breakdowns else events.withColumn(
        "view_name", F.lit(TRAFFIC_VIEW)).withColumn("dim", F.lit(TOTAL_DIM))
    return traffic(keyed, granularity, exact_visitors=exact_visitors, keys=("view_name", "dim"))


def traffic(events: DataFrame, granularity: str, *, exact_visitors: bool, keys: tuple[str, ...] = ()) -> DataFrame:
    """Pageviews and unique visitors per site and bucket, with the visitors' HLL sketch.

    Output: site, *keys, bucket (timestamp, bucket start), pageviews, events, visitors,
    visitors_sketch. Hours and days need the site's ``timezone`` column (see ``bucket_column``).
    """
    bucket_key = "w" if granularity == "minute" else "bucket"
    bucket = bucket_column(granularity).alias(bucket_key)
    counts = [F.count_if(F.col("type") == F.lit("pageview")).alias("pageviews"), F.count(F.lit(1)).alias("events")]
    if exact_visitors:
        # Batch: count distinct visitors in two steps (per visitor, then per bucket) rather
        # than count_distinct beside other aggregates, which makes Spark expand every row.
        per_visitor = events.groupBy(F.col("site"), *keys, bucket, F.col("visitor_id")).agg(*counts)
        grouped = per_visitor.groupBy("site", *keys, bucket_key).agg(
            F.sum("pageviews").alias("pageviews"), F.sum("events").alias("events"),
            F.count(F.col("visitor_id")).alias("visitors"),
            F.hll_sketch_agg(F.col("visitor_id"), HLL_LG_K).alias("visitors_sketch"))
    else:
        # Streaming: one aggregation (update mode cannot chain two); visitors from the sketch.
        grouped = events.groupBy(F.col("site"), *keys, bucket).agg(
            *counts, F.hll_sketch_agg(F.col("visitor_id"), HLL_LG_K).alias("visitors_sketch"))
    if granularity == "minute":
        grouped = grouped.withColumn("bucket", F.col("w.start"))
    visitors = F.col("visitors") if exact_visitors else F.hll_sketch_estimate(F.col("visitors_sketch"))
    return grouped.select(
        "site",
        *keys,
        "bucket",
        F.col("pageviews").cast("long").alias("pageviews"),
        F.col("events").cast("long").alias("events"),
        visitors.cast("long").alias("visitors"),
        "visitors_sketch",
    )
