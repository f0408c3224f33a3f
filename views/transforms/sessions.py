"""Sessions: a visitor's events until the gap passes without one, and their measures in
the bucket where each session started."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from schemas.sources import NONE_VALUE
from views.catalogue import SESSION_DIMENSIONS, TOTAL_DIM, TRAFFIC_VIEW
from views.transforms.buckets import bucket_column


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
