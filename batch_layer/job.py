"""The batch layer: recompute one day's views exactly from the master dataset.

Recipe: read the day's events (plus the neighbouring date partitions, where late or
clock-skewed events of the day may sit) -> deduplicate by event_id -> the same
``views.transforms`` the speed layer runs, with exact unique counts -> upsert
``batch_views`` for every granularity -> record the run -> move each site's batch boundary
past the day, last, so that a reader never sees half a day.

Submitted by Airflow (``dags/parallax_nightly.py``) or run by hand:
``parallax batch --date 2026-11-21``.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from views.catalogue import GRANULARITIES
from views.store import BATCH_TABLE, traffic_params, upsert, upsert_cql
from views.transforms import dedupe_events, traffic

log = logging.getLogger(__name__)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def read_day(spark: SparkSession, master_dir: str, day: date) -> DataFrame | None:
    """The events whose event time falls on ``day`` (UTC), or None if nothing was archived."""
    if not (Path(master_dir) / "_spark_metadata").exists() and not any(Path(master_dir).glob("date=*")):
        return None
    start, end = day_bounds(day)
    dates = [day - timedelta(days=1), day, day + timedelta(days=1)]
    # Reading the root lets Spark use the streaming sink's commit log (only committed files).
    events = spark.read.parquet(master_dir).where(F.col("date").isin(dates))
    return events.where((F.col("event_time") >= F.lit(start)) & (F.col("event_time") < F.lit(end)))


def day_views(events: DataFrame) -> dict[str, DataFrame]:
    """Every granularity's exact traffic view of one day's deduplicated events."""
    deduped = dedupe_events(events, within_watermark=False)
    return {g: traffic(deduped, g, exact_visitors=True) for g in GRANULARITIES}


def run_day(spark: SparkSession, session: Any, keyspace: str, master_dir: str, day: date) -> dict[str, int]:
    """Compute and write the day's views, then move the boundary. Returns per-site events."""
    start, end = day_bounds(day)
    now = datetime.now(timezone.utc)
    events = read_day(spark, master_dir, day)
    per_site: dict[str, tuple[int, int]] = {}
    if events is None:
        log.warning("no master dataset at %s yet: %s has no events", master_dir, day)
    else:
        events = events.cache()
        stats = events.groupBy("site").agg(F.count("*").alias("n"), F.count_distinct("event_id").alias("u")).collect()
        per_site = {r["site"]: (int(r["n"]), int(r["n"]) - int(r["u"])) for r in stats}
        log.info("%s: %d events (%d duplicates) for %d sites", day, sum(n for n, _ in per_site.values()),
                 sum(d for _, d in per_site.values()), len(per_site))
        statement = session.prepare(upsert_cql(keyspace, BATCH_TABLE))
        for granularity, view in day_views(events).items():
            rows = [r.asDict() for r in view.collect()]
            written = upsert(session, statement, (traffic_params(r, granularity, now) for r in rows))
            log.info("%s: wrote %d %s buckets", day, written, granularity)
        events.unpersist()

    sites = [r.site for r in session.execute(f"SELECT site FROM {keyspace}.sites")]
    run_stmt = session.prepare(
        f"INSERT INTO {keyspace}.batch_runs (day, site, events, duplicates, finished_at) VALUES (?, ?, ?, ?, ?)"
    )
    upsert(session, run_stmt, [(day, s, *per_site.get(s, (0, 0)), now) for s in sorted(set(sites) | set(per_site))])
    move_boundary(session, keyspace, sites, end)
    log.info("%s: batch boundary of %d sites is now at least %s", day, len(sites), end.isoformat())
    return {s: n for s, (n, _) in per_site.items()}


def move_boundary(session: Any, keyspace: str, sites: list[str], end: datetime) -> None:
    """Move each site's boundary forward to ``end``, never back (re-running an old day
    must not hide newer batch views)."""
    current = {r.site: r.boundary for r in session.execute(f"SELECT site, boundary FROM {keyspace}.batch_boundary")}
    stmt = session.prepare(f"INSERT INTO {keyspace}.batch_boundary (site, boundary, updated_at) VALUES (?, ?, ?)")
    now = datetime.now(timezone.utc)
    params = []
    for site in sites:
        old = current.get(site)
        if old is not None and old.replace(tzinfo=timezone.utc) >= end:
            continue
        params.append((site, end, now))
    upsert(session, stmt, params)
