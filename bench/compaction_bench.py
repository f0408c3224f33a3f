"""Compaction benchmark: a day of the master dataset as the archive query writes it from a
stream of ``--rate`` events/s lasting ``--seconds``, compacted (``batch_layer.compact``);
its files and bytes, the compaction's time, and the batch layer's read time of the day
before and after.

    .venv/bin/python -m bench.compaction_bench --rate 2000 --seconds 3600

Faster than real time, and honestly: Kafka is first loaded with the stream's events (a
topic of its own, 3 partitions like `events`; ``tools.synthetic.spark.visits``: 20 sites,
event times spread over the hour from 10:00 UTC of DAY, keyed site|visitor as the
collector keys them). Then the real archive query (``SpeedQueries.start_archive``: the
same frame, Delta sink, partitioning and checkpointing) drains it, back to back, with
``maxOffsetsPerTrigger`` = rate × the archive trigger (60,000 for 2,000/s and 30 s): each
micro-batch takes what a live trigger collects, so the table gets the commits and files
that the live stream would have made. The table and the query's checkpoint are under
var/bench/compaction (deleted at the end unless ``--keep``).

Timed, each ``--reads`` times before and after the compaction (the best is reported, all
are printed; the first of a kind also pays for the JVM's warm-up):
- **scan**: Spark counts the partition's events and sums their ids' hashes (every file's
  event_id column read: Delta's statistics cannot answer it);
- **batch read**: the batch layer's read of the day, the first step of ``run_day``: read
  the days its sites' zones touch, classify, deduplicate, count per site (what its log
  reports as "read in");
- **archive answer**: the serving layer's on-demand read (``store.archive``): delta-rs lists
  the day's files, DuckDB counts their distinct event ids.
Then the compaction: ``compact_partition`` (OPTIMIZE of the partition, and its check: the
partition's events and id checksum at the versions before and at the commit), then the
VACUUM (which deletes nothing here: the replaced files are minutes old). Needs the local
stack (`parallax stack up`) for Kafka.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
import uuid
from datetime import date, datetime, timedelta, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_layer.compact import compact_partition, partition_files, vacuum
from batch_layer.days import classified, deduplicated, read_days, session_span
from batch_layer.migrate_archive import tally
from bench.common import machine
from infra.clients import create_topics, delete_topics
from infra.master import read_table
from infra.settings import load_settings
from infra.spark import get_session
from speed_layer.queries import SpeedQueries
from store.archive import Archive
from tools.synthetic.spark import visits
from views.transforms import local_date

DAY = date(2026, 6, 10)
START = datetime(DAY.year, DAY.month, DAY.day, 10, tzinfo=timezone.utc)
SITES = 20
PARTITIONS = 3  # as the `events` topic (schemas/topics.json)


def preload(spark: SparkSession, bootstrap: str, topic: str, n: int, seconds: int) -> None:
    """``n`` events over ``seconds`` from START, keyed site|visitor, into ``topic``."""
    start_ms = int(START.timestamp() * 1000)
    events = visits(spark, n, start_ms=start_ms, span_ms=seconds * 1000, sites=SITES, site_prefix="bench-")
    key = F.concat_ws("|", F.get_json_object("value", "$.site"), F.get_json_object("value", "$.visitor_id"))
    (events.select(key.alias("key"), "value").write.format("kafka").option("kafka.bootstrap.servers", bootstrap)
     .option("topic", topic).option("kafka.compression.type", "lz4").save())


def scan(spark: SparkSession, master: str) -> tuple[int, int]:
    return tally(read_table(spark, master).where(F.col("date") == F.lit(DAY))).get(DAY, (0, 0))


def batch_read(spark: SparkSession, master: str, gap: str) -> int:
    """``batch_layer.job.compute_day``'s read of the day (its sites in UTC): the events."""
    sites = {f"bench-{i}": "UTC" for i in range(SITES)}
    events = read_days(spark, master, DAY - timedelta(days=2), DAY + timedelta(days=1), sites)
    archive: DataFrame = deduplicated(classified(events.where(session_span(DAY, gap)))).cache()
    try:
        day_events = archive.where(local_date(archive) == F.lit(DAY))
        return sum(r["n"] for r in day_events.groupBy("site").agg(F.count(F.lit(1)).alias("n")).collect())
    finally:
        archive.unpersist()


def archive_answer(archive: Archive) -> int:
    """The serving layer's read of the day: its files listed, their distinct ids counted."""
    files = archive.files_of_days(DAY, DAY)
    return archive.query(files, "SELECT count(DISTINCT event_id) FROM {events}", [], {"event_id": "VARCHAR"})[0][0]


def timed(fn, times: int) -> tuple[float, list[float], object]:
    runs, result = [], None
    for _ in range(times):
        t0 = time.perf_counter()
        result = fn()
        runs.append(round(time.perf_counter() - t0, 2))
    return min(runs), runs, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=2000, help="events/s of the stream")
    parser.add_argument("--seconds", type=int, default=3600, help="how long the stream lasts")
    parser.add_argument("--trigger-seconds", type=int, default=30, help="the archive query's live trigger")
    parser.add_argument("--reads", type=int, default=2, help="times each read is timed, before and after")
    parser.add_argument("--keep", action="store_true", help="keep the table under var/bench/compaction")
    args = parser.parse_args()

    settings = load_settings()
    n = args.rate * args.seconds
    per_batch = args.rate * args.trigger_seconds
    root = settings.paths.var_dir / "bench" / "compaction"
    shutil.rmtree(root, ignore_errors=True)
    master = str(root / "master")
    topic = f"bench.compaction.{uuid.uuid4().hex[:8]}"
    create_topics(settings, {topic: {"partitions": PARTITIONS}})
    # The archive query as the speed layer runs it, on the bench's topic, table and
    # checkpoint: micro-batches of a live trigger's events, started back to back.
    bench = settings.replace(kafka={"topic_events": topic},
                             paths={"master_dir": root / "master", "checkpoint_dir": root / "checkpoints"},
                             speed={"max_batch_events": per_batch, "archive_trigger": "0 seconds",
                                    "starting_offsets": "earliest"})
    spark = get_session(bench, "parallax-compaction-bench", with_kafka=True, batch=True)
    spark.conf.set("spark.sql.streaming.numRecentProgressUpdates", "100000")
    result: dict = {"events": n, "rate": args.rate, "seconds": args.seconds, "events_per_micro_batch": per_batch}
    try:
        t0 = time.perf_counter()
        preload(spark, settings.kafka.bootstrap, topic, n, args.seconds)
        result["preload_s"] = round(time.perf_counter() - t0, 1)
        print(f"preloaded {n:,} events into {topic} in {result['preload_s']} s", flush=True)

        t0 = time.perf_counter()
        query = SpeedQueries(spark, bench, view_sink=lambda df, i: None, session_sink=lambda df, i: None) \
            .start_archive()
        query.processAllAvailable()
        query.stop()
        batches = [p for p in query.recentProgress if p["numInputRows"]]
        result["archive"] = {"seconds": round(time.perf_counter() - t0, 1), "micro_batches": len(batches),
                             "events": sum(p["numInputRows"] for p in batches),
                             "largest_micro_batch": max(p["numInputRows"] for p in batches)}
        print(f"archived: {json.dumps(result['archive'])}", flush=True)

        def measure(when: str) -> tuple[int, int]:
            files = partition_files(master)[DAY]
            scan_s, scan_runs, checksum = timed(lambda: scan(spark, master), args.reads)
            read_s, read_runs, events = timed(lambda: batch_read(spark, master, settings.spark.session_gap),
                                              args.reads)
            archive = Archive(root / "master", threads=2, memory_limit=settings.serving.archive_memory)
            try:
                answer_s, answer_runs, distinct = timed(lambda: archive_answer(archive), args.reads)
            finally:
                archive.close()
            result[when] = {"files": files.count, "bytes": files.size, "scan_s": scan_s, "scan_runs": scan_runs,
                            "batch_read_s": read_s, "batch_read_runs": read_runs, "batch_read_events": events,
                            "archive_answer_s": answer_s, "archive_answer_runs": answer_runs,
                            "archive_answer_events": distinct}
            print(f"{when}: {json.dumps(result[when])}", flush=True)
            return checksum

        before = measure("before")
        compaction = compact_partition(spark, master, DAY)
        cleanup = vacuum(spark, master, settings.compaction.vacuum_retention_hours)
        result["compaction"] = {"optimize_s": round(compaction.seconds, 1),
                                "check_s": round(compaction.check_seconds, 1),
                                "files_removed": compaction.removed.count, "files_added": compaction.added.count,
                                "vacuum_s": round(cleanup.seconds, 1), "vacuum_deleted": cleanup.deleted}
        print(f"compaction: {json.dumps(result['compaction'])}", flush=True)
        after = measure("after")
        result["events_and_checksum_equal"] = before == after and before[0] == n
        print(json.dumps(result), flush=True)
        b, a = result["before"], result["after"]
        print(f"\n| best of {args.reads} | files | MiB | scan | batch read | archive answer |")
        print("|---|---:|---:|---:|---:|---:|")
        for when, r in (("before", b), ("after", a)):
            print(f"| {when} | {r['files']:,} | {r['bytes'] / 2**20:,.1f} | {r['scan_s']:.1f} s | "
                  f"{r['batch_read_s']:.1f} s | {r['archive_answer_s']:.2f} s |")
        print(f"\nmachine: {machine()}, Spark driver {settings.spark.driver_memory}, {settings.spark.master}")
    finally:
        spark.stop()
        delete_topics(settings, [topic])
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
