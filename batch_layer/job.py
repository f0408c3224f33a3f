"""The batch layer: recompute one day's views exactly from the master dataset.

Recipe: read the day's events -- day D of each site in the site's own time zone, so the
UTC date partitions D-1..D+1 of the master dataset -- -> deduplicate by event_id -> the same
``views.transforms`` the speed layer runs, with exact unique counts (``batch_layer.days``)
-> upsert ``batch_views`` for every granularity, then remove the site-days' rows the run
did not write again (``batch_layer.writer``, ``batch_layer.replace``) -> record the run
-> move each site's batch boundary past the day, last, so that a reader never sees half a
day, and only if every day since the site's first was computed (a gap holds it, and is
logged) -> the drift record (``batch_layer.drift``).

Submitted by Airflow (``dags/parallax_nightly.py``, through ``batch_layer/daily_views.py``)
or run by hand: ``parallax batch --date 2026-11-21``.
"""
from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

from cassandra.cluster import Session
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from batch_layer.days import COPIES, classified, day_sessions, day_views, deduplicated, read_days, session_span
from batch_layer.drift import record_drift
from batch_layer.validation import DayValidator
from batch_layer.writer import DayTotals, ViewSink, ViewWriter
from infra import master
from store.boundary import Boundaries, day_spans
from store.registry import Registry
from views.catalogue import DEFAULT_SESSION_GAP, GRANULARITIES, local_day_bounds
from views.transforms import local_date, session_views

log = logging.getLogger(__name__)


def run_day(spark: SparkSession, session: Session, keyspace: str, master_dir: str, day: date,
            sites: dict[str, str], session_gap: str = DEFAULT_SESSION_GAP,
            drift_threshold: float | None = None) -> dict[str, int]:
    """Compute and write ``day``'s views of ``sites`` (site -> zone) -- event views of the
    day, session views of the day and the day before (see ``day_sessions``) -- then move
    their boundary. A measure whose speed figure was off by more than ``drift_threshold``
    (a fraction) is recorded as an incident, for the alarms. Returns the events per site."""
    now = datetime.now(timezone.utc)
    if not sites:
        log.info("%s: no site to recompute", day)
        return {}
    registry = Registry(session, keyspace)
    site_rows = registry.sites()
    validator = DayValidator(day, sites)
    # One version of the master dataset, recorded with the run: commits after it are late data.
    version = master.current_version(master_dir)
    # The site-days' rows are replaced wholesale: those the run does not write again go.
    with ViewWriter(session, keyspace, now, on_rows=validator, replace=(day, sites)) as writer:
        per_site = compute_day(spark, registry, site_rows, master_dir, day, sites, session_gap, writer, version)
    # Before anything records the day as computed: a run that fails here is retried, and
    # readers keep what they had (the boundary does not pass the day).
    validator.check(site for site, (events, _) in per_site.items() if events)
    log.info("%s: the views of %d sites pass validation", day, len(sites))

    # A site's first day (registration, in its zone) is where its days must start being final.
    registered = {row.site: row.created_at for row in site_rows}
    boundaries = Boundaries(session, keyspace)
    boundaries.record_run(day, {site: per_site.get(site, (0, 0)) for site in set(sites) | set(per_site)}, now,
                          version)
    moved = boundaries.move_forward(sites, registered)
    log.info("%s: batch boundary of %d sites moved up to the end of their last day computed without a gap",
             day, len(sites))
    for site, state in moved.items():
        if state.gaps:
            log.warning("%s: gap in site %s: no batch run has computed %s; its batch boundary cannot pass it "
                        "and is at %s", day, site, day_spans(state.gaps),
                        state.boundary.isoformat() if state.boundary else "none (nothing final)")
    t0 = time.perf_counter()
    record_drift(session, keyspace, day, sites, drift_threshold)
    log.info("%s: drift of the speed views recorded in %.1fs", day, time.perf_counter() - t0)
    return {s: n for s, (n, _) in per_site.items()}


def dry_run_day(spark: SparkSession, session: Session, keyspace: str, master_dir: str, day: date,
                sites: dict[str, str], session_gap: str = DEFAULT_SESSION_GAP) -> DayTotals:
    """What ``run_day`` would compute for ``day``'s site totals, written nowhere: the day's
    exact totals per site and measure (the boundary, the runs and the drift untouched)."""
    totals = DayTotals({site: local_day_bounds(day, tz)[0] for site, tz in sites.items()})
    if sites:
        registry = Registry(session, keyspace)
        compute_day(spark, registry, registry.sites(), master_dir, day, sites, session_gap, totals)
    return totals


def compute_day(spark: SparkSession, registry: Registry, site_rows: list[Any], master_dir: str, day: date,
                sites: dict[str, str], session_gap: str, writer: ViewSink, version: int | None = None
                ) -> dict[str, tuple[int, int]]:
    """Compute every view of ``day`` for ``sites`` from the master dataset at ``version``
    (default: its current one) and hand each frame to ``writer``. ``site_rows``: the
    registry's sites (their domains classify referrers). Returns per site its (events,
    duplicates) of the day."""
    # One read serves the day's event views and the sessions of the day and the day before.
    domains = {row.site: frozenset(row.domains or ()) for row in site_rows}
    events = read_days(spark, master_dir, day - timedelta(days=2), day + timedelta(days=1), sites, domains, version)
    if events is None:
        log.warning("no master dataset at %s yet: %s has no events", master_dir, day)
        return {}
    t0 = time.perf_counter()
    # Kept: the event views and the sessions aggregate the same deduplicated frame.
    archive = deduplicated(classified(events.where(session_span(day, session_gap)))).cache()
    day_events = archive.where(local_date(archive) == F.lit(day))
    per_site = {r["site"]: (int(r["copies"]), int(r["copies"]) - int(r["unique"])) for r in
                day_events.groupBy("site").agg(F.sum(COPIES).alias("copies"), F.count(F.lit(1)).alias("unique"))
                .collect()}
    log.info("%s: %d events (%d duplicates) for %d sites, read in %.1fs", day, sum(n for n, _ in per_site.values()),
             sum(d for _, d in per_site.values()), len(per_site), time.perf_counter() - t0)
    goals = tuple(g for g in registry.goals() if g.site in sites)
    day_starts = {site: local_day_bounds(day, tz)[0] for site, tz in sites.items()}
    # Cassandra writes overlap Spark computing the next view; all are done before the
    # caller records the run and moves the boundary. Sessions go first: their many minute
    # rows are then written while Spark computes the event views.
    sessions = day_sessions(archive, day, session_gap).cache()
    for granularity in GRANULARITIES:
        writer.write(session_views(sessions, granularity), granularity, "session",
                     f"{day - timedelta(days=1)}..{day}: {granularity} session views")
    sessions.unpersist()
    event_views, kept = day_views(day_events, goals, day_starts)
    for granularity, view in event_views.items():
        writer.write(view, granularity, "event", f"{day}: {granularity} event views")
    for frame in kept:
        frame.unpersist()
    archive.unpersist()
    return per_site
