"""Time buckets and local days: the Spark twin of ``views.catalogue.bucket_start``."""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from views.catalogue import GRANULARITIES


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


def with_bucket(events: DataFrame, granularity: str) -> DataFrame:
    """``events`` with their ``granularity`` bucket as a column (``_bucket_<granularity>``),
    so that it is computed once per event, not once per view the event counts in."""
    name = f"_bucket_{granularity}"
    return events if name in events.columns else events.withColumn(name, bucket_column(granularity))


def bucket_of(events: DataFrame, granularity: str) -> Column:
    """The events' ``granularity`` bucket: the column ``with_bucket`` added, else computed."""
    name = f"_bucket_{granularity}"
    return F.col(name) if name in events.columns else bucket_column(granularity)
