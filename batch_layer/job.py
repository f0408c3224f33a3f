"""The batch layer: recompute one day's views exactly from the master dataset.

Recipe: read the day's events -- day D of each site in the site's own time zone, so the
UTC date partitions D-1..D+1 of the master dataset -- -> deduplicate by event_id -> the same
``views.transforms`` the speed layer runs, with exact unique counts -> upsert
``batch_views`` for every granularity -> record the run -> move each site's batch boundary
past the day, last, so that a reader never sees half a day.

Submitted by Airflow (``dags/parallax_nightly.py``) or run by hand:
``parallax batch --date 2026-11-21``.
"""
from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark import StorageLevel
from pyspark.sql import functions as F

from batch_layer.drift import record_drift
from schemas.sources import SOURCE_FIELDS
from views.catalogue import BREAKDOWN_GRANULARITIES, DEFAULT_SESSION_GAP, GRANULARITIES, local_day_bounds
from views.goals import Goal, read_goals
from views.store import BATCH_TABLE, read_boundaries, upsert, upsert_cql, view_params, view_partition
from views.transforms import (
    COUNT_COLUMNS,
    local_date,
    session_rows,
    session_views,
    views,
    views_from_partials,
    visitor_partials,
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


def read_days(spark: SparkSession, master_dir: str, first: date, last: date, sites: dict[str, str]) -> DataFrame | None:
    """The events that happened from day ``first`` to day ``last`` (inclusive) in their
    site's time zone, with a ``timezone`` column; None if nothing was archived yet.
    ``sites`` maps site -> IANA zone."""
    if not (Path(master_dir) / "_spark_metadata").exists() and not any(Path(master_dir).glob("date=*")):
        return None
    # Zones are within ±14 h of UTC: local days lie within the UTC dates a day either side.
    dates = [first + timedelta(days=i) for i in range(-1, (last - first).days + 2)]
    # The join keeps only ``sites``' events and gives each its site's zone.
    zones = spark.createDataFrame(list(sites.items()), "site STRING, timezone STRING")
    # Reading the root lets Spark use the streaming sink's commit log (only committed files).
    events = (
        # mergeSchema: files archived before a schema change lack its new columns (null there).
        spark.read.option("mergeSchema", "true").parquet(master_dir).where(F.col("date").isin(dates))
        .join(F.broadcast(zones), "site")
    )
    return events.where(local_date(events).between(F.lit(first), F.lit(last)))


def deduplicated(events: DataFrame) -> DataFrame:
    """One row per ``event_id`` (an arbitrary one of its copies: retries are identical),
    with the number of copies, clustered by site and visitor.

    Every later aggregation groups by site and visitor among its keys (visitor partials,
    sessions), so this one shuffle serves all of them: Spark adds no other exchange before
    the visitor partials, and the ~16 rows each event explodes into never cross one.
    Equivalent to ``views.transforms.dedupe_events`` (``dropDuplicates`` is an aggregate
    taking each column's first value), plus the count."""
    columns = [c for c in INPUT_COLUMNS if c in events.columns and c != "event_id"]
    # Clustering by event_id first lets the aggregate run without a partial sort of its own.
    once = events.repartition("event_id").groupBy("event_id").agg(
        *(F.first(c).alias(c) for c in columns), F.count(F.lit(1)).alias(COPIES))
    return once.repartition("site", "visitor_id")


def day_views(events: DataFrame, goals: tuple[Goal, ...],
              day_starts: dict[str, datetime]) -> tuple[dict[str, DataFrame], DataFrame]:
    """Every granularity's exact event views of one day's deduplicated events: the site
    total at every granularity, breakdowns at hours and days. ``day_starts``: each site's
    day bucket (the UTC start of the day in its zone), which all of ``events`` lie in.

    Dimensions, hour buckets and type codes are derived once per event, and every event is
    exploded into its views once: the visitor partials of the hours are kept (returned too,
    for the caller to unpersist), and the days are rolled up from them rather than from
    the events again."""
    assert BREAKDOWN_GRANULARITIES == ("hour", "day")
    keys = ("view_name", "dim")
    # The zone is only needed for the hour buckets, derived here once per event.
    bucketed = with_type_code(with_bucket(with_dimensions(events), "hour")).drop("timezone")
    hours = visitor_partials(with_view_keys(bucketed, goals), "hour", keys).persist(StorageLevel.MEMORY_AND_DISK)
    return {"minute": views(events, "minute", exact_visitors=True, breakdowns=False),
            "hour": views_from_partials(hours, keys),
            "day": views_from_partials(day_partials(hours, keys, day_starts), keys)}, hours


def day_partials(hours: DataFrame, keys: tuple[str, ...], day_starts: dict[str, datetime]) -> DataFrame:
    """The hour partials of one day summed per visitor into the day's bucket. Every hour of
    a site lies in its one day, so the bucket comes from ``day_starts`` (site -> day start,
    a broadcast lookup) instead of time zone arithmetic on every partial."""
    starts = hours.sparkSession.createDataFrame(sorted(day_starts.items()), "site STRING, bucket TIMESTAMP")
    days = hours.groupBy("site", *keys, "visitor_id").agg(*(F.sum(c).alias(c) for c in COUNT_COLUMNS))
    return days.join(F.broadcast(starts), "site")


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


def registered_sites(session: Any, keyspace: str) -> dict[str, str]:
    """Every registered site and its IANA time zone."""
    return {r.site: r.timezone or "UTC" for r in session.execute(f"SELECT site, timezone FROM {keyspace}.sites")}


def run_day(spark: SparkSession, session: Any, keyspace: str, master_dir: str, day: date,
            sites: dict[str, str], session_gap: str = DEFAULT_SESSION_GAP) -> dict[str, int]:
    """Compute and write ``day``'s views of ``sites`` (site -> zone) -- event views of the
    day, session views of the day and the day before (see ``day_sessions``) -- then move
    their boundary. Returns the events per site."""
    now = datetime.now(timezone.utc)
    if not sites:
        log.info("%s: no site to recompute", day)
        return {}
    # One read serves the day's event views and the sessions of the day and the day before.
    events = read_days(spark, master_dir, day - timedelta(days=2), day + timedelta(days=1), sites)
    per_site: dict[str, tuple[int, int]] = {}
    if events is None:
        log.warning("no master dataset at %s yet: %s has no events", master_dir, day)
    else:
        t0 = time.perf_counter()
        # Kept: the event views and the sessions aggregate the same deduplicated frame.
        archive = deduplicated(events.where(session_span(day, session_gap))).cache()
        day_events = archive.where(local_date(archive) == F.lit(day))
        per_site = {r["site"]: (int(r["copies"]), int(r["copies"]) - int(r["unique"])) for r in
                    day_events.groupBy("site").agg(F.sum(COPIES).alias("copies"), F.count(F.lit(1)).alias("unique"))
                    .collect()}
        log.info("%s: %d events (%d duplicates) for %d sites, read in %.1fs", day, sum(n for n, _ in per_site.values()),
                 sum(d for _, d in per_site.values()), len(per_site), time.perf_counter() - t0)
        goals = tuple(g for g in read_goals(session, keyspace) if g.site in sites)
        day_starts = {site: local_day_bounds(day, tz)[0] for site, tz in sites.items()}
        event_views, hours = day_views(day_events, goals, day_starts)
        for granularity, view in event_views.items():
            write_views(session, keyspace, view, granularity, "event", now, f"{day}: {granularity} event views")
        hours.unpersist()
        sessions = day_sessions(archive, day, session_gap).cache()
        for granularity in GRANULARITIES:
            write_views(session, keyspace, session_views(sessions, granularity), granularity, "session", now,
                        f"{day - timedelta(days=1)}..{day}: {granularity} session views")
        sessions.unpersist()
        archive.unpersist()

    run_stmt = session.prepare(
        f"INSERT INTO {keyspace}.batch_runs (day, site, events, duplicates, finished_at) VALUES (?, ?, ?, ?, ?)"
    )
    upsert(session, run_stmt, [(day, s, *per_site.get(s, (0, 0)), now) for s in sorted(set(sites) | set(per_site))])
    ends = {site: local_day_bounds(day, tz)[1] for site, tz in sites.items()}
    move_boundary(session, keyspace, ends)
    log.info("%s: batch boundary of %d sites is now at least the end of that day in their zone", day, len(sites))
    t0 = time.perf_counter()
    record_drift(session, keyspace, day, sites)
    log.info("%s: drift of the speed views recorded in %.1fs", day, time.perf_counter() - t0)
    return {s: n for s, (n, _) in per_site.items()}


def write_views(session: Any, keyspace: str, view: DataFrame, granularity: str, kind: str, now: datetime,
                what: str) -> int:
    """Collect a view frame and upsert its rows' ``kind`` columns into the batch views."""
    t0 = time.perf_counter()
    rows = [r.asDict() for r in view.collect()]
    t1 = time.perf_counter()
    statement = session.prepare(upsert_cql(keyspace, BATCH_TABLE, kind))
    written = upsert(session, statement, (view_params(r, granularity, now, kind) for r in rows),
                     partition_of=view_partition)
    log.info("%s: %d rows computed in %.1fs, written in %.1fs", what, written, t1 - t0, time.perf_counter() - t1)
    return written


def move_boundary(session: Any, keyspace: str, ends: dict[str, datetime]) -> None:
    """Move each site's boundary forward to the end of the day just computed (its local
    midnight), never back: re-running an old day must not hide newer batch views."""
    current = read_boundaries(session, keyspace)
    stmt = session.prepare(f"INSERT INTO {keyspace}.batch_boundary (site, boundary, updated_at) VALUES (?, ?, ?)")
    now = datetime.now(timezone.utc)
    params = []
    for site, end in ends.items():
        old = current.get(site)
        if old is not None and old >= end:
            continue
        params.append((site, end, now))
    upsert(session, stmt, params)
