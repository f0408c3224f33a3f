"""Reprocessing: the job the `parallax_reprocess` DAG submits, recomputing 1 day and then 7
days of a site with 1 M events a day, timed end to end (its own process: Spark's start,
the reads, every view of every day written, runs recorded, boundary and drift).

    .venv/bin/python -m bench.reprocess_bench --events-per-day 1000000 --days 7

Needs the local stack (`parallax stack up`). The master dataset (synthetic visits, one
Delta table) is generated once under var/bench/ and reused.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.common import machine
from infra.clients import cassandra_session
from infra.master import append_events, table_exists
from infra.settings import Settings, load_settings
from infra.spark import get_session
from speed_layer.queries import archive_frame
from store.registry import Registry
from tools.synthetic.spark import visits

SITE = "bench-reprocess"


def setup(settings: Settings, per_day: int, first: date, days: int) -> Path:
    master = settings.paths.var_dir / "bench" / f"reprocess-v1-{per_day}-{days}-{first}" / "master"
    session = cassandra_session(settings, settings.cassandra.keyspace)
    try:
        Registry(session, settings.cassandra.keyspace).add_site(SITE, ["site.test"], "UTC")
    finally:
        session.cluster.shutdown()
    if table_exists(master):
        return master
    spark = get_session(settings, "parallax-reprocess-bench", batch=True)
    try:
        start_ms = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp() * 1000)
        t0 = time.perf_counter()
        for i in range(days):  # a day per commit, as the archive's days arrive
            append_events(archive_frame(visits(spark, per_day, start_ms=start_ms + i * 86_400_000,
                                               span_ms=86_400_000, sites=1, site_prefix=SITE, seed=i)), master)
        print(f"generated {per_day * days:,} events of {first}..{first + timedelta(days=days - 1)} "
              f"in {time.perf_counter() - t0:.0f}s", flush=True)
    finally:
        spark.stop()
    return master


def reprocess(master: Path, first: date, last: date) -> float:
    """Seconds for the reprocess job over first..last, run as the DAG runs it (its own process)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "batch_layer.reprocess", "--first", first.isoformat(),
                    "--last", last.isoformat(), f"--sites={SITE}"], check=True,
                   env={**os.environ, "PARALLAX_MASTER_DIR": str(master)})
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events-per-day", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    settings = load_settings()
    first = datetime.now(UTC).date() - timedelta(days=args.days + 2)
    master = setup(settings, args.events_per_day, first, args.days)
    one = reprocess(master, first, first)
    week = reprocess(master, first, first + timedelta(days=args.days - 1))
    print(f"\nmachine: {machine()}")
    print(f"reprocess 1 day of {args.events_per_day:,} events: {one:.0f} s")
    print(f"reprocess {args.days} days of {args.events_per_day:,} events each: {week:.0f} s "
          f"({week / one:.1f}x one day; {week / args.days:.0f} s a day)")


if __name__ == "__main__":
    main()
