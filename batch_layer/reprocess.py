"""spark-submit entry point of a reprocessing: recompute exactly the given site-days.

    spark-submit batch_layer/reprocess.py --first 2026-11-01 --last 2026-11-07 [--sites a,b] [--dry-run]
        [--run-id ID]
    spark-submit batch_layer/reprocess.py --site-days "2026-11-02:a,b;2026-11-03:c"
        exactly those site-days (what the late-data DAG submits)

Every day of the range, for every site given (default: every registered site) where that
day has ended (+ grace) in the site's zone, is recomputed as the nightly run does it
(``batch_layer.job.run_day``: views upserted, the run recorded, the boundary moved if the
days before are final, the drift recorded). Re-running writes the same rows.

With ``--dry-run`` nothing is written to the views, the runs or the boundary: for each
site, day and measure, the day's total the batch views hold and the recomputed one are
logged and stored under the run id (``store.reprocessing``; ``parallax reprocess report``).
What the DAG ``parallax_reprocess`` submits.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import date, datetime, timezone

from batch_layer.job import dry_run_day, run_day
from batch_layer.schedule import PlanError, plan_range, plan_site_days, utcnow
from batch_layer.writer import DAY_MEASURES
from infra.clients import cassandra_session
from infra.settings import Settings, load_settings
from infra.spark import get_session
from store.registry import Registry
from store.reprocessing import Comparison, ReprocessReports

log = logging.getLogger("batch_layer.reprocess")
def _sites(value: str) -> list[str]:
    return sorted({s.strip() for s in value.split(",") if s.strip()})


def _site_days(value: str) -> dict[date, list[str]]:
    out: dict[date, list[str]] = {}
    for part in filter(None, value.split(";")):
        day, _, sites = part.partition(":")
        try:
            out[date.fromisoformat(day.strip())] = _sites(sites)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not DAY:SITE,SITE") from None
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Recompute exactly the given site-days from the master dataset.")
    parser.add_argument("--first", type=date.fromisoformat, help="first day, YYYY-MM-DD")
    parser.add_argument("--last", type=date.fromisoformat, help="last day, YYYY-MM-DD (inclusive)")
    parser.add_argument("--site-days", type=_site_days, help="instead of a range: DAY:SITE,SITE;DAY:SITE...")
    parser.add_argument("--sites", type=_sites, default=[], help="comma-separated site ids (default: every site)")
    parser.add_argument("--dry-run", action="store_true", help="write nothing; report stored vs recomputed totals")
    parser.add_argument("--run-id", default="", help="the report's id (the Airflow run id); default: now")
    # Airflow's templated arguments leave an empty string where an option is left out.
    args = parser.parse_args([a for a in (sys.argv[1:] if argv is None else argv) if a])
    if args.site_days is None and (args.first is None or args.last is None):
        parser.error("give --first and --last, or --site-days")
    return args


def compare(day: date, sites: dict[str, str], recomputed: dict[str, dict[str, int]], reports: ReprocessReports
            ) -> list[Comparison]:
    out = []
    for site, tz in sorted(sites.items()):
        stored = reports.stored_totals(site, tz, day, DAY_MEASURES)
        for measure in DAY_MEASURES:
            out.append(Comparison(site, day, measure, stored[measure], recomputed.get(site, {}).get(measure, 0)))
    return out


def log_comparisons(comparisons: list[Comparison]) -> None:
    """The dry run's report as a table in the log (the task log, under Airflow)."""
    log.info("dry run: %-24s %-10s %-18s %14s %14s", "site", "day", "measure", "stored", "recomputed")
    for c in comparisons:
        stored = "-" if c.stored is None else f"{c.stored:,}"
        log.info("dry run: %-24s %-10s %-18s %14s %14s%s", c.site, c.day, c.measure, stored, f"{c.recomputed:,}",
                 "  <- differs" if c.differs else "")
    differing = sum(c.differs for c in comparisons)
    log.info("dry run: %d of %d totals would change", differing, len(comparisons))


def run(settings: Settings, args: argparse.Namespace) -> int:
    keyspace = settings.cassandra.keyspace
    session = cassandra_session(settings, keyspace)
    spark = None
    try:
        zones = Registry(session, keyspace).site_zones()
        try:
            if args.site_days is not None:
                ready, waiting = plan_site_days(zones, args.site_days, utcnow())
            else:
                ready, waiting = plan_range(zones, args.first, args.last, args.sites, utcnow())
        except PlanError as exc:
            log.error("%s", exc)
            return 2
        for day, sites in waiting:
            log.warning("%s has not ended (+ grace) yet in the zone of %s: not recomputed", day, ", ".join(sites))
        if not ready:
            log.info("nothing to recompute")
            return 0
        run_id = args.run_id or datetime.now(timezone.utc).strftime("manual__%Y-%m-%dT%H:%M:%S")
        log.info("%s %d site-days over %d days (%s..%s)%s", "dry run of" if args.dry_run else "recomputing",
                 sum(len(s) for s in ready.values()), len(ready), min(ready), max(ready),
                 f", report {run_id}" if args.dry_run else "")
        spark = get_session(settings, "parallax-reprocess", batch=True)
        reports = ReprocessReports(session, keyspace)
        t_all = time.perf_counter()
        for i, (day, sites) in enumerate(ready.items(), 1):
            t0 = time.perf_counter()
            log.info("day %d/%d: %s for %d site(s): %s", i, len(ready), day, len(sites), ", ".join(sites))
            site_zones = {s: zones[s] for s in sites}
            if args.dry_run:
                totals = dry_run_day(spark, session, keyspace, str(settings.paths.master_dir), day, site_zones,
                                     settings.spark.session_gap)
                comparisons = compare(day, site_zones, totals.totals, reports)
                log_comparisons(comparisons)
                reports.write(run_id, comparisons, datetime.now(timezone.utc))
            else:
                run_day(spark, session, keyspace, str(settings.paths.master_dir), day, site_zones,
                        settings.spark.session_gap, settings.alerts.drift_threshold)
            log.info("day %d/%d: %s done in %.0f s", i, len(ready), day, time.perf_counter() - t0)
        log.info("%d days %s in %.0f s", len(ready), "dry-run" if args.dry_run else "recomputed",
                 time.perf_counter() - t_all)
        return 0
    finally:
        session.cluster.shutdown()
        if spark is not None:
            spark.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(load_settings(), args)


if __name__ == "__main__":
    sys.exit(main())
