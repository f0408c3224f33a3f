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

Then the compaction: ``compact_partition`` (OPTIMIZE of the partition, and its check: the
partition's events and id checksum at the versions before and at the commit), then the
VACUUM (which deletes nothing here: the replaced files are minutes old, and stay a week).
So both states of the partition stay readable, by version, and the reads of each are
timed in ``--rounds`` rounds, the two versions taking turns (the best is reported, all are
printed; the machine's load drifts over both alike):
- **scan**: Spark counts the partition's events and sums their ids' hashes (every file's
  event_id column read: Delta's statistics cannot answer it);
- **batch read**: the batch layer's read of the day, the first step of ``run_day``: read
  the days its sites' zones touch, classify, deduplicate, count per site (what its log
  reports as "read in");
- **archive answer**: the serving layer's on-demand read (``store.archive``): delta-rs lists
  the day's files, DuckDB counts their distinct event ids.
Each read must count all of the partition's events. ``--keep`` keeps the table, and
``--reuse`` times the reads again on it. Needs the local stack (`parallax stack up`) for
Kafka.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch_layer.compact import compact_partition, partition_files, vacuum
from batch_layer.days import classified, deduplicated, read_days, session_span
from batch_layer.migrate_archive import tally
from bench.common import machine
from infra.clients import create_topics, delete_topics
from infra.master import read_table
from infra.settings import Settings, load_settings
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


def scan(spark: SparkSession, master: str, version: int) -> tuple[int, int]:
    return tally(read_table(spark, master, version).where(F.col("date") == F.lit(DAY))).get(DAY, (0, 0))


def batch_read(spark: SparkSession, master: str, version: int, gap: str) -> int:
    """``batch_layer.job.compute_day``'s read of the day (its sites in UTC): the events."""
    sites = {f"bench-{i}": "UTC" for i in range(SITES)}
    events = read_days(spark, master, DAY - timedelta(days=2), DAY + timedelta(days=1), sites, version=version)
    archive: DataFrame = deduplicated(classified(events.where(session_span(DAY, gap)))).cache()
    try:
        day_events = archive.where(local_date(archive) == F.lit(DAY))
        return sum(r["n"] for r in day_events.groupBy("site").agg(F.count(F.lit(1)).alias("n")).collect())
    finally:
        archive.unpersist()


def archive_answer(archive: Archive, master: str, version: int) -> int:
    """The serving layer's read of the day: its files (of ``version``) listed by delta-rs,
    their distinct ids counted by its DuckDB."""
    files = [Path(u) for u in DeltaTable(master, version=version).file_uris(
        file_pruning_predicate=[("date", "=", DAY.isoformat())])]
    return archive.query(files, "SELECT count(DISTINCT event_id) FROM {events}", [], {"event_id": "VARCHAR"})[0][0]


def compaction_version(master: str) -> int:
    """The version of the table's (last) OPTIMIZE commit."""
    table = DeltaTable(master)
    return max(c["version"] for c in table.history() if c["operation"] == "OPTIMIZE")


def measure(spark: SparkSession, settings: Settings, master: str, versions: dict[str, int], rounds: int) -> dict:
    """Each read of each version, ``rounds`` times, the versions taking turns (the first
    alternating): the machine's load drifts over both alike."""
    kinds = {"scan": lambda v: scan(spark, master, v)[0],
             "batch_read": lambda v: batch_read(spark, master, v, settings.spark.session_gap)}
    archive = Archive(Path(master), threads=2, memory_limit=settings.serving.archive_memory)
    kinds["archive_answer"] = lambda v: archive_answer(archive, master, v)
    runs: dict[str, dict[str, list[float]]] = {w: {k: [] for k in kinds} for w in versions}
    try:
        for i in range(rounds):
            for when in (list(versions) if i % 2 == 0 else list(versions)[::-1]):
                for kind, fn in kinds.items():
                    t0 = time.perf_counter()
                    events = fn(versions[when])
                    runs[when][kind].append(round(time.perf_counter() - t0, 2))
                    if events != events_in(master, versions[when]):
                        raise RuntimeError(f"{kind} of {when} counted {events:,} events")
                print(f"round {i + 1}: {when}: {json.dumps(runs[when])}", flush=True)
    finally:
        archive.close()
    return runs


def events_in(master: str, version: int) -> int:
    """The partition's events by the table's own statistics (what each read must count)."""
    actions = pa.table(DeltaTable(master, version=version).get_add_actions(flatten=True))
    days, records = actions.column("partition.date").to_pylist(), actions.column("num_records").to_pylist()
    return sum(n for d, n in zip(days, records, strict=True) if d == DAY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=2000, help="events/s of the stream")
    parser.add_argument("--seconds", type=int, default=3600, help="how long the stream lasts")
    parser.add_argument("--trigger-seconds", type=int, default=30, help="the archive query's live trigger")
    parser.add_argument("--rounds", type=int, default=3, help="times each read of each version is timed")
    parser.add_argument("--keep", action="store_true", help="keep the table under var/bench/compaction")
    parser.add_argument("--reuse", action="store_true",
                        help="time the reads again on the table a run kept (no load, archive or compaction)")
    args = parser.parse_args()

    settings = load_settings()
    root = settings.paths.var_dir / "bench" / "compaction"
    master = str(root / "master")
    result: dict = {}
    topic = None
    if args.reuse:
        spark = get_session(settings, "parallax-compaction-bench", batch=True)
    else:
        n, per_batch = args.rate * args.seconds, args.rate * args.trigger_seconds
        result.update({"events": n, "rate": args.rate, "seconds": args.seconds, "events_per_micro_batch": per_batch})
        shutil.rmtree(root, ignore_errors=True)
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
    try:
        if not args.reuse:
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

            compaction = compact_partition(spark, master, DAY)
            cleanup = vacuum(spark, master, settings.compaction.vacuum_retention_hours)
            result["compaction"] = {"optimize_s": round(compaction.seconds, 1),
                                    "check_s": round(compaction.check_seconds, 1),
                                    "files_removed": compaction.removed.count, "files_added": compaction.added.count,
                                    "vacuum_s": round(cleanup.seconds, 1), "vacuum_deleted": cleanup.deleted}
            print(f"compaction: {json.dumps(result['compaction'])}", flush=True)

        # Before: the version just before the compaction's commit (its files are still on
        # disk: nothing is vacuumed for a week); after: that commit's.
        compacted = compaction_version(master)
        versions = {"before": compacted - 1, "after": compacted}
        for when, version in versions.items():
            files = partition_files(master, version)[DAY]
            result[when] = {"version": version, "files": files.count, "bytes": files.size}
        tallies = {when: scan(spark, master, version) for when, version in versions.items()}
        result["events_and_checksum_equal"] = tallies["before"] == tallies["after"]
        runs = measure(spark, settings, master, versions, args.rounds)
        for when in versions:
            for kind, times in runs[when].items():
                result[when][f"{kind}_s"], result[when][f"{kind}_runs"] = min(times), times
        print(json.dumps(result), flush=True)
        print(f"\n| best of {args.rounds} | files | MiB | scan | batch read | archive answer |")
        print("|---|---:|---:|---:|---:|---:|")
        for when in versions:
            r = result[when]
            print(f"| {when} | {r['files']:,} | {r['bytes'] / 2**20:,.1f} | {r['scan_s']:.1f} s | "
                  f"{r['batch_read_s']:.1f} s | {r['archive_answer_s']:.2f} s |")
        print(f"\nmachine: {machine()}, Spark driver {settings.spark.driver_memory}, {settings.spark.master}")
    finally:
        spark.stop()
        if topic:
            delete_topics(settings, [topic])
        if not args.keep and not args.reuse:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
