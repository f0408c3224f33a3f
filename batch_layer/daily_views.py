"""spark-submit entry point of the batch layer.

    spark-submit batch_layer/daily_views.py --day 2026-11-21
        recompute 2026-11-21 for every site whose 2026-11-21 has ended in its time zone;
    spark-submit batch_layer/daily_views.py --interval 2026-11-22T00:00:00+00:00 2026-11-22T01:00:00+00:00
        recompute, for each site, the day that ended (its local midnight) in that interval
        (what the hourly Airflow DAG submits).

Settings (Cassandra, master dataset) come from the PARALLAX_* environment, like every
other Parallax process.
"""
from __future__ import annotations

import argparse
import logging
import sys
from datetime import date, datetime

from batch_layer.job import run_day
from batch_layer.schedule import days_ended_between, sites_with_day_ended, utcnow
from infra.clients import cassandra_session
from infra.settings import load_settings
from infra.spark import get_session
from store.registry import Registry

log = logging.getLogger("batch_layer")


def _instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs a UTC offset")
    return parsed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Recompute exact views from the master dataset.")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--day", type=date.fromisoformat, help="the day, YYYY-MM-DD, in each site's zone")
    what.add_argument("--interval", nargs=2, type=_instant, metavar=("START", "END"),
                      help="the days that ended (local midnight) in [START, END), per site")
    # Airflow's templated arguments leave an empty string where an option takes one value.
    return parser.parse_args([a for a in (sys.argv[1:] if argv is None else argv) if a])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    keyspace = settings.cassandra.keyspace
    session = cassandra_session(settings, keyspace)
    zones = Registry(session, keyspace).site_zones()
    if args.day:
        ready, waiting = sites_with_day_ended(zones, args.day, utcnow())
        if waiting:
            log.warning("%s has not ended (+ grace) yet in the zone of %s; not recomputed now", args.day,
                        ", ".join(waiting))
        plan = {args.day: ready} if ready else {}
    else:
        plan = days_ended_between(zones, *args.interval)
    if not plan:
        log.info("nothing to recompute")
    spark = get_session(settings, "parallax-batch", batch=True) if plan else None
    try:
        for day, sites in plan.items():
            log.info("recomputing %s for %d site(s): %s", day, len(sites), ", ".join(sites))
            run_day(spark, session, keyspace, str(settings.paths.master_dir), day, {s: zones[s] for s in sites},
                    settings.spark.session_gap, settings.alerts.drift_threshold)
    finally:
        session.cluster.shutdown()
        if spark is not None:
            spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
