"""Batch layer benchmark: wall time to recompute one day (all views, all sites) from the
master dataset, and DuckDB computing the same views from the same Parquet files.

    .venv/bin/python -m bench.batch_bench --events 1000000 2500000 5000000

Needs the local stack (`parallax stack up`): the batch job writes its views to the real
Cassandra, as in production. Generated data is cached under var/bench/ (not committed).
Prints one line per size and a Markdown table for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
from pyspark.sql import SparkSession

from batch_layer.job import run_day
from bench.common import machine
from infra.clients import cassandra_session
from infra.master import append_events
from infra.settings import load_settings
from infra.spark import get_session
from speed_layer.queries import archive_frame
from store.registry import Registry
from tools.synthetic.spark import visits
from views.goals import Goal

DAY = date(2026, 6, 10)
SITES = 20


def generate(spark: SparkSession, path: Path, n: int, stamped: bool = True) -> None:
    """``n`` events of DAY for SITES sites (``tools.synthetic.spark.visits``), laid out like
    the archive query's output; ``stamped``: with the collector's acquisition fields (else
    the batch classifies them)."""
    start_ms = int(datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc).timestamp() * 1000)
    events = visits(spark, n, start_ms=start_ms, span_ms=86_000_000 + 120_000, sites=SITES, stamped=stamped)
    shutil.rmtree(path, ignore_errors=True)
    append_events(archive_frame(events), path)


def duckdb_views(master: Path) -> tuple[float, int]:
    """The same views in DuckDB: site totals at minute/hour/day, every breakdown (goals and
    elements included) at hour/day, exact unique visitors, and the session views (site
    total, entry and exit pages) at minute/hour/day. Returns (seconds, rows)."""
    con = duckdb.connect()
    con.execute(f"SET threads TO {os.cpu_count()}")
    t0 = time.perf_counter()
    con.execute(f"""CREATE TEMP TABLE ev AS SELECT DISTINCT ON (event_id) * FROM
                    read_parquet('{master}/date=*/*.parquet', hive_partitioning = true, union_by_name = true)""")
    keyed = """SELECT *, unnest(list_filter([
        {'v': 'traffic', 'd': ''}, {'v': 'page', 'd': path},
        {'v': 'channel', 'd': channel}, {'v': 'source', 'd': source},
        {'v': 'utm_source', 'd': utm_source}, {'v': 'utm_medium', 'd': utm_medium},
        {'v': 'utm_campaign', 'd': utm_campaign},
        {'v': 'country', 'd': coalesce(country, '(none)')}, {'v': 'device', 'd': coalesce(device, '(none)')},
        {'v': 'browser', 'd': coalesce(browser, '(none)')}, {'v': 'os', 'd': coalesce(os, '(none)')},
        {'v': 'event_name', 'd': coalesce(name, type)},
        CASE WHEN type IN ('click', 'impression') AND props['element'] IS NOT NULL
             THEN {'v': 'element', 'd': props['element']} END,
        CASE WHEN type = 'pageview' AND path = '/signup' THEN {'v': 'goal', 'd': 'Signup page'} END,
        CASE WHEN coalesce(name, type) = 'signup' THEN {'v': 'goal', 'd': 'Signed up'} END,
        {'v': 'prop:element', 'd': props['element']}], lambda x: x IS NOT NULL AND x.d IS NOT NULL)) AS k FROM ev"""
    counts = """count(*) FILTER (WHERE type = 'pageview') AS pageviews, count(*) AS events,
                count(*) FILTER (WHERE type = 'click') AS clicks,
                count(*) FILTER (WHERE type = 'impression') AS impressions,
                count(DISTINCT visitor_id) AS visitors"""
    rows = 0
    for unit, breakdowns in (("minute", False), ("hour", True), ("day", True)):
        source_rel = f"({keyed})" if breakdowns else "(SELECT *, {'v': 'traffic', 'd': ''} AS k FROM ev)"
        rows += con.execute(f"""SELECT count(*) FROM (
            SELECT site, k.v, k.d, date_trunc('{unit}', event_time) AS bucket, {counts}
            FROM {source_rel} GROUP BY ALL)""").fetchone()[0]
    # Sessions: more than 30 minutes without an event starts a new one.
    con.execute("""CREATE TEMP TABLE sessions AS
        WITH marked AS (
            SELECT *, CASE WHEN event_time - lag(event_time) OVER w > INTERVAL 30 MINUTE
                                OR lag(event_time) OVER w IS NULL THEN 1 ELSE 0 END AS starts
            FROM ev WINDOW w AS (PARTITION BY site, visitor_id ORDER BY event_time, event_id)),
        numbered AS (
            SELECT *, sum(starts) OVER (PARTITION BY site, visitor_id ORDER BY event_time, event_id) AS n FROM marked)
        SELECT site, visitor_id, n, min(event_time) AS start, max(event_time) - min(event_time) AS duration,
               count(*) FILTER (WHERE type = 'pageview') AS pageviews,
               coalesce(arg_min(path, (event_time, event_id)) FILTER (WHERE type = 'pageview'), '(none)') AS entry_page,
               coalesce(arg_max(path, (event_time, event_id)) FILTER (WHERE type = 'pageview'), '(none)') AS exit_page
        FROM numbered GROUP BY ALL""")
    for unit in ("minute", "hour", "day"):
        rows += con.execute(f"""SELECT count(*) FROM (
            SELECT site, k.v, k.d, date_trunc('{unit}', start) AS bucket, count(*) AS sessions,
                   count(*) FILTER (WHERE pageviews = 1) AS bounces, sum(epoch_ms(duration)) AS duration_ms,
                   sum(pageviews) AS session_pageviews
            FROM (SELECT *, unnest([{{'v': 'traffic', 'd': ''}}, {{'v': 'entry_page', 'd': entry_page}},
                                    {{'v': 'exit_page', 'd': exit_page}}]) AS k FROM sessions)
            GROUP BY ALL)""").fetchone()[0]
    return time.perf_counter() - t0, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 2_500_000, 5_000_000])
    parser.add_argument("--unstamped", action="store_true",
                        help="events without the collector's acquisition fields, as archived before it classified "
                             "or before a rule update: the run classifies every one (a re-run after an update)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("batch_layer").setLevel(logging.INFO)

    settings = load_settings()
    spark = get_session(settings, "parallax-batch-bench", batch=True)
    session = cassandra_session(settings, settings.cassandra.keyspace)
    registry = Registry(session, settings.cassandra.keyspace)
    zones = {f"site-{i}": "UTC" for i in range(SITES)}
    for site in zones:
        registry.add_site(site, ["site.test"], "UTC")
        registry.add_goal(Goal(site, "Signup page", "page", "/signup"))
        registry.add_goal(Goal(site, "Signed up", "event", "signup"))
    results = []
    for n in args.events:
        # v5: visits, the catalogue's fields, the acquisition channels (stamped or not)
        master = settings.paths.var_dir / "bench" / f"master-v5-{'unstamped' if args.unstamped else 'stamped'}-{n}"
        if not (master / "_SUCCESS").exists():
            t0 = time.perf_counter()
            generate(spark, master, n, stamped=not args.unstamped)
            print(f"generated {n:,} events in {time.perf_counter() - t0:.0f}s -> {master}", flush=True)
        t0 = time.perf_counter()
        counted = run_day(spark, session, settings.cassandra.keyspace, str(master), DAY, zones)
        spark_s = time.perf_counter() - t0
        assert sum(counted.values()) == n, (sum(counted.values()), n)
        if args.unstamped:  # DuckDB has no acquisition rule to classify them with
            results.append({"events": n, "spark_s": round(spark_s, 1), "duckdb_s": None, "ratio": None})
            print(json.dumps(results[-1]), flush=True)
            continue
        duck_s, duck_rows = duckdb_views(master)
        results.append({"events": n, "spark_s": round(spark_s, 1), "duckdb_s": round(duck_s, 1),
                        "ratio": round(spark_s / duck_s, 1), "duckdb_rows": duck_rows})
        print(json.dumps(results[-1]), flush=True)
    session.cluster.shutdown()
    spark.stop()
    print(f"\nmachine: {machine()}, Spark driver {settings.spark.driver_memory}, {settings.spark.master}")
    print("| events | Parallax batch (Spark, all views, written to Cassandra) | DuckDB (same views, in memory) "
          "| ratio |")
    print("|---:|---:|---:|---:|")
    for r in results:
        duck = (f"{r['duckdb_s']} s", f"{r['ratio']}x") if r["duckdb_s"] is not None else ("-", "-")
        print(f"| {r['events']:,} | {r['spark_s']} s | {duck[0]} | {duck[1]} |")


if __name__ == "__main__":
    main()
