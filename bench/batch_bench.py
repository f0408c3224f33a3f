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
import platform
import time
from datetime import date, datetime, timezone
from pathlib import Path

DAY = date(2026, 6, 10)
SITES = 20


def generate(spark, path: Path, n: int) -> None:
    """``n`` events of DAY for SITES sites, laid out like the archive query's output."""
    from pyspark.sql import functions as F

    from speed_layer.job import archive_frame

    start_ms = int(datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc).timestamp() * 1000)
    r = F.col("id")
    h = F.xxhash64(r)  # deterministic pseudo-random bits per event
    paths = F.array(*[F.lit(p) for p in ["/", "/pricing", "/blog", "/blog/a", "/blog/b", "/docs", "/docs/install",
                                          "/about", "/signup", "/contact"]])
    refs = F.array(*[F.lit(x) for x in ["", "", "https://www.google.com/", "https://news.ycombinator.com/",
                                         "https://partner.example/", "https://site.test/"]])
    types = F.array(F.lit("pageview"), F.lit("pageview"), F.lit("pageview"), F.lit("click"), F.lit("custom"))
    page = paths[F.abs(h % 10)]
    events = spark.range(n).select(
        F.to_json(F.struct(
            F.expr("uuid()").alias("event_id"),
            F.concat(F.lit("site-"), (F.abs(h) % SITES).cast("string")).alias("site"),
            types[F.abs(F.xxhash64(r, F.lit(1)) % 5)].alias("type"),
            (F.lit(start_ms) + F.abs(F.xxhash64(r, F.lit(2)) % 86_400_000)).alias("ts"),
            F.concat(F.lit("https://site.test"), page,
                     F.when(F.abs(h % 7) == 0, F.lit("?utm_source=news&utm_campaign=june")).otherwise(F.lit(""))).alias("url"),
            page.alias("path"),
            refs[F.abs(F.xxhash64(r, F.lit(3)) % 6)].alias("referrer"),
            F.concat(F.lit("v"), (F.abs(F.xxhash64(r, F.lit(4))) % (n // 8 + 1)).cast("string")).alias("visitor_id"),
            F.lit(0).alias("received_at"), F.lit(2).alias("schema_version"),
        )).alias("value"))
    archive_frame(events).write.mode("overwrite").partitionBy("date").parquet(str(path))


def duckdb_views(master: Path) -> tuple[float, int]:
    """The same views in DuckDB: site totals at minute/hour/day, breakdowns at hour/day,
    exact unique visitors. Returns (seconds, rows)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads TO {os.cpu_count()}")
    t0 = time.perf_counter()
    con.execute(f"""CREATE TEMP TABLE ev AS SELECT DISTINCT ON (event_id) * FROM
                    read_parquet('{master}/*/*.parquet', hive_partitioning = true)""")
    source = """CASE WHEN url LIKE '%utm_source=%' THEN 'campaign'
                     WHEN referrer IS NULL OR referrer = '' THEN 'direct'
                     WHEN referrer LIKE '%site.test%' THEN 'internal'
                     WHEN referrer LIKE '%google.%' THEN 'search'
                     WHEN referrer LIKE '%news.ycombinator.com%' THEN 'social' ELSE 'other sites' END"""
    keyed = f"""SELECT *, unnest([
        {{'v': 'traffic', 'd': ''}}, {{'v': 'page', 'd': path}}, {{'v': 'referrer_source', 'd': {source}}},
        {{'v': 'utm_source', 'd': coalesce(regexp_extract(url, 'utm_source=([^&]*)', 1), '(none)')}},
        {{'v': 'utm_medium', 'd': coalesce(nullif(regexp_extract(url, 'utm_medium=([^&]*)', 1), ''), '(none)')}},
        {{'v': 'utm_campaign', 'd': coalesce(nullif(regexp_extract(url, 'utm_campaign=([^&]*)', 1), ''), '(none)')}},
        {{'v': 'event_name', 'd': coalesce(name, type)}}]) AS k FROM ev"""
    rows = 0
    for unit, breakdowns in (("minute", False), ("hour", True), ("day", True)):
        source_rel = f"({keyed})" if breakdowns else "(SELECT *, {'v': 'traffic', 'd': ''} AS k FROM ev)"
        rows += con.execute(f"""SELECT count(*) FROM (
            SELECT site, k.v, k.d, date_trunc('{unit}', event_time) AS bucket,
                   count(*) FILTER (WHERE type = 'pageview') AS pageviews, count(*) AS events,
                   count(DISTINCT visitor_id) AS visitors
            FROM {source_rel} GROUP BY ALL)""").fetchone()[0]
    return time.perf_counter() - t0, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 2_500_000, 5_000_000])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("batch_layer").setLevel(logging.INFO)

    from batch_layer.job import run_day
    from infra.clients import cassandra_session
    from infra.settings import load_settings
    from infra.sites import add_site
    from infra.spark import get_session

    settings = load_settings()
    spark = get_session(settings, "parallax-batch-bench")
    session = cassandra_session(settings, settings.keyspace)
    zones = {f"site-{i}": "UTC" for i in range(SITES)}
    for site in zones:
        add_site(session, settings.keyspace, site, ["site.test"], "UTC")
    results = []
    for n in args.events:
        master = settings.var_dir / "bench" / f"master-{n}"
        if not (master / "_SUCCESS").exists():
            t0 = time.perf_counter()
            generate(spark, master, n)
            print(f"generated {n:,} events in {time.perf_counter() - t0:.0f}s -> {master}", flush=True)
        t0 = time.perf_counter()
        counted = run_day(spark, session, settings.keyspace, str(master), DAY, zones)
        spark_s = time.perf_counter() - t0
        assert sum(counted.values()) == n, (sum(counted.values()), n)
        duck_s, duck_rows = duckdb_views(master)
        results.append({"events": n, "spark_s": round(spark_s, 1), "duckdb_s": round(duck_s, 1),
                        "ratio": round(spark_s / duck_s, 1), "duckdb_rows": duck_rows})
        print(json.dumps(results[-1]), flush=True)
    session.cluster.shutdown()
    spark.stop()
    print(f"\nmachine: {platform.node()} {os.cpu_count()} cores, {platform.platform()}, "
          f"Spark driver {settings.spark_driver_memory}, {settings.spark_master}")
    print("| events | Parallax batch (Spark, all views, written to Cassandra) | DuckDB (same views, in memory) | ratio |")
    print("|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['events']:,} | {r['spark_s']} s | {r['duckdb_s']} s | {r['ratio']}x |")


if __name__ == "__main__":
    main()
