"""A day's exact views: the events of the day in each site's zone, deduplicated, and every
granularity of their event and session views, from the same ``views.transforms`` the speed
layer runs (with exact unique counts)."""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from infra import master
from schemas.sources import RULE_VERSION, SOURCE_FIELDS
from views.catalogue import BREAKDOWN_GRANULARITIES
from views.goals import Goal
from views.transforms import (
    COUNT_COLUMNS,
    is_stale,
    local_date,
    session_rows,
    views,
    views_from_partials,
    visitor_partials,
    with_acquisition,
    with_bucket,
    with_dimensions,
    with_type_code,
    with_view_keys,
)

log = logging.getLogger(__name__)
# What the event views and the sessions read of an event (the views derive their
# dimensions from url, referrer and the collector's enrichment; goals match path and name).
INPUT_COLUMNS = ("site", "timezone", "visitor_id", "event_id", "type", "event_time", "path", "name", "props", "url",
                 "referrer", "country", "device", "browser", "os", *SOURCE_FIELDS)
# How many archived copies a deduplicated event had (tracker retries), for the run's record.
COPIES = "_copies"
# Partitions of the day's events, clustered by site and visitor. The visitor partials'
# aggregation keeps hundreds of thousands of keys per task at 5M events a day; smaller
# tasks keep each task's hash map closer to the CPU caches (BENCHMARKS.md).
VISITOR_PARTITIONS = 128
# Repeated event ids (tracker retries) listed on the driver and broadcast (``deduplicated``).
MAX_LISTED_REPEATS = 200_000


def read_days(spark: SparkSession, master_dir: str, first: date, last: date, sites: dict[str, str],
              domains: dict[str, frozenset[str]] | None = None, version: int | None = None) -> DataFrame | None:
    """The events that happened from day ``first`` to day ``last`` (inclusive) in their
    site's time zone, with ``timezone`` and ``domains`` (the site's registered domains)
    columns; None if nothing was archived yet. ``sites`` maps site -> IANA zone;
    ``version``: the table's (default: its current one)."""
    if master.is_legacy(master_dir):
        raise RuntimeError(f"the master dataset at {master_dir} is a Parquet archive of an earlier Parallax: "
                           "migrate it first (`parallax archive migrate`)")
    if not master.table_exists(master_dir):
        return None
    # Zones are within ±14 h of UTC: local days lie within the UTC dates a day either side.
    dates = [first + timedelta(days=i) for i in range(-1, (last - first).days + 2)]
    # The join keeps only ``sites``' events and gives each its site's zone and domains.
    domains = domains or {}
    zones = spark.createDataFrame([(site, tz, sorted(domains.get(site, ()))) for site, tz in sites.items()],
                                  "site STRING, timezone STRING, domains ARRAY<STRING>")
    # The table's current version; the date filter selects its partitions.
    events = (master.read_table(spark, master_dir, version).where(F.col("date").isin(dates))
              .join(F.broadcast(zones), "site"))
    return events.where(local_date(events).between(F.lit(first), F.lit(last)))


def classified(events: DataFrame) -> DataFrame:
    """``events`` with the acquisition fields of the current rule: events classified by an
    older rule, or archived before the collector classified, are classified again from
    their stored URL and referrer (``views.transforms.with_acquisition``). Most days have
    none: one look at the stamps (a column Parquet can skip through) saves the rule's
    Python workers a pass over every event."""
    if not events.where(is_stale(events.columns)).limit(1).collect():
        return events
    log.info("some events carry no acquisition stamp or an older one than rule %s: classifying those again",
             RULE_VERSION)
    return with_acquisition(events)


def deduplicated(events: DataFrame, max_listed: int = MAX_LISTED_REPEATS) -> DataFrame:
    """One row per ``event_id`` (an arbitrary one of its copies: retries are identical),
    with the number of copies, clustered by site and visitor.

    Every later aggregation groups by site and visitor among its keys (visitor partials,
    sessions), so this one shuffle serves all of them: Spark adds no other exchange before
    the visitor partials, and the ~16 rows each event explodes into never cross one.
    Equivalent to ``views.transforms.dedupe_events`` (``dropDuplicates`` is an aggregate
    taking each column's first value), plus the count.

    Few events are repeated: the ids that are (found by shuffling the ids alone) are
    listed and broadcast, events with a single copy go straight to the clustering shuffle,
    and only the repeated ones are aggregated. Past ``max_listed`` repeated ids (a mass
    redelivery), every event is aggregated by its id instead."""
    columns = [c for c in INPUT_COLUMNS if c in events.columns]
    events = events.select(*columns)
    repeated = events.groupBy("event_id").agg(F.count(F.lit(1)).alias(COPIES)).where(F.col(COPIES) > 1)
    listed = repeated.limit(max_listed + 1).collect()
    if len(listed) > max_listed:
        log.info("more than %d event ids archived more than once: deduplicating every event by its id", max_listed)
        once = _first_copies(events.repartition("event_id"))
    else:
        ids = F.broadcast(events.sparkSession.createDataFrame(
            [tuple(r) for r in listed], f"event_id STRING, {COPIES} LONG"))
        single = events.join(ids, "event_id", "left_anti").withColumn(COPIES, F.lit(1).cast("long"))
        once = single.unionByName(_first_copies(events.join(ids.select("event_id"), "event_id", "left_semi")))
    return once.repartition(VISITOR_PARTITIONS, "site", "visitor_id")


def _first_copies(events: DataFrame) -> DataFrame:
    """One row per event id (each column's first value) with its number of copies."""
    return events.groupBy("event_id").agg(*(F.first(c).alias(c) for c in events.columns if c != "event_id"),
                                          F.count(F.lit(1)).alias(COPIES))


def day_views(events: DataFrame, goals: tuple[Goal, ...],
              day_starts: dict[str, datetime]) -> tuple[dict[str, DataFrame], list[DataFrame]]:
    """Every granularity's exact event views of one day's deduplicated events: the site
    total at every granularity, breakdowns at hours and days. ``day_starts``: each site's
    day bucket (the UTC start of the day in its zone), which all of ``events`` lie in.

    Dimensions, hour buckets and type codes are derived once per event, and every event is
    exploded into its views once, into the hours' visitor partials. The days come from the
    hours: counts summed, sketches unioned, and visitors counted exactly from the partials
    (every hour of a site lies in its one day). Also returns the frames kept in memory for
    this, for the caller to unpersist once the views are written."""
    assert BREAKDOWN_GRANULARITIES == ("hour", "day")
    keys = ("view_name", "dim")
    # The zone is only needed for the hour buckets, derived here once per event.
    bucketed = with_type_code(with_bucket(with_dimensions(events), "hour")).drop("timezone")
    partials = visitor_partials(with_view_keys(bucketed, goals), "hour", keys).persist(StorageLevel.MEMORY_AND_DISK)
    hours = views_from_partials(partials, keys).persist()
    return {"minute": views(events, "minute", exact_visitors=True, breakdowns=False),
            "hour": hours,
            "day": day_rollup(hours, partials, keys, day_starts)}, [partials, hours]


def day_rollup(hours: DataFrame, partials: DataFrame, keys: tuple[str, ...],
               day_starts: dict[str, datetime]) -> DataFrame:
    """A day's view rows from its hours' view rows and visitor partials.

    Counts are sums and the sketch is the union of the hours' sketches: an HLL union keeps
    each register's maximum, the registers of a sketch of all the day's visitors, and its
    estimate keeps the sketch's error bound (the speed layer's and the reports' ranges are
    unions too). Visitors are counted exactly, as the distinct visitors of the day's
    partials: the partials are clustered by site and visitor, so that count needs no
    shuffle of the partials. The bucket is each site's day start (``day_starts``, a
    broadcast lookup), not zone arithmetic on every row."""
    starts = hours.sparkSession.createDataFrame(sorted(day_starts.items()), "site STRING, bucket TIMESTAMP")
    visitors = partials.select("site", *keys, "visitor_id").distinct().groupBy("site", *keys).agg(
        F.count(F.lit(1)).alias("visitors"))
    sums = hours.groupBy("site", *keys).agg(*(F.sum(c).alias(c) for c in COUNT_COLUMNS),
                                            F.hll_union_agg("visitors_sketch").alias("visitors_sketch"))
    days = sums.join(visitors, ["site", *keys]).join(F.broadcast(starts), "site")
    return days.select("site", *keys, "bucket", "pageviews", "events", "visitors", "visitors_sketch", "clicks",
                       "impressions")


def session_span(day: date, gap: str) -> Column:
    """Whether an event can belong to a session that started on ``day - 1`` or ``day``
    (site's zone): from ``gap`` before ``day - 1`` on (an event then decides whether the
    first ones continue an earlier session), up to the end of ``day + 1`` (sessions may
    run past midnight)."""
    first_start = F.to_utc_timestamp(F.lit(day - timedelta(days=1)).cast("timestamp"), F.col("timezone"))
    return F.col("event_time") >= first_start - F.expr(f"INTERVAL {gap}")


def day_sessions(events: DataFrame, day: date, gap: str) -> DataFrame:
    """The exact sessions that started on ``day - 1`` or ``day`` (site's zone), from the
    deduplicated events of ``read_days(day - 2, day + 1)`` within ``session_span``.

    Sessions count in the day they start, and may run past midnight: the run for ``day``
    therefore also recomputes ``day - 1``, whose sessions that were still open when its own
    run read the archive are complete now.
    """
    sessions = session_rows(events.where(session_span(day, gap)), gap)
    start_day = F.to_date(F.from_utc_timestamp(F.col("start"), F.col("timezone")))
    return sessions.where(start_day.between(F.lit(day - timedelta(days=1)), F.lit(day)))
