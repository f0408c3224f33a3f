"""The event measures of every view: counts, and visitors exactly (batch) or from the HLL
sketch (streaming), with the sketch kept for later unions."""
from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from views.catalogue import EVENT_COUNTS, TOTAL_DIM, TRAFFIC_VIEW
from views.goals import Goal
from views.sketches import HLL_LG_K
from views.transforms.buckets import bucket_of, with_bucket
from views.transforms.events import COUNTED_TYPES, TYPE_CODE
from views.transforms.keys import with_view_keys


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


COUNT_COLUMNS = tuple(EVENT_COUNTS)


def _counts(events: DataFrame) -> list[Column]:
    """The event counts of a view row (``views.catalogue.EVENT_COUNTS``), from ``events``
    (by ``TYPE_CODE`` if they have it)."""
    def of_type(t: str) -> Column:
        if TYPE_CODE in events.columns:
            return F.col(TYPE_CODE) == F.lit(COUNTED_TYPES.index(t) + 1)
        return F.col("type") == F.lit(t)
    return [(F.count(F.lit(1)) if counted is None else F.count_if(of_type(counted))).alias(column)
            for column, counted in EVENT_COUNTS.items()]


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
    bucket = bucket_of(events, granularity).alias("w" if granularity == "minute" else "bucket")
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
    bucket = bucket_of(events, granularity)
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
