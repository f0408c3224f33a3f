"""The speed layer: Kafka `events` -> Cassandra speed views + the master dataset archive.

Run it with ``parallax speed``. Two checkpointed streaming queries read the same topic:
- ``archive``: every parsed event, appended as Parquet partitioned by event date (the
  immutable master dataset the batch layer recomputes from; it keeps late events too);
- ``views``: events deduplicated within the watermark, aggregated into minute buckets by
  ``views.transforms.traffic``, upserted into ``speed_views`` and published to
  `metrics.live` after every micro-batch.
A restart resumes both from their checkpoints: nothing is skipped, nothing counted twice.
"""
from __future__ import annotations

import logging
import re
import shutil
import signal
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from speed_layer.sinks import SpeedViewSink
from views.catalogue import SPEED_GRANULARITY
from views.store import read_boundaries
from views.transforms import dedupe_events, parse_events, views

log = logging.getLogger(__name__)

# The shape of the views query's state. Bump it with every change Spark cannot restore
# from an old checkpoint (new grouping keys or aggregates): the query then starts a new
# checkpoint and rebuilds the speed views from Kafka (see ``views_start``).
VIEWS_QUERY_VERSION = 2
RESTORE_ERRORS = ("STATE_STORE_KEY_SCHEMA_NOT_COMPATIBLE", "STATE_STORE_VALUE_SCHEMA_NOT_COMPATIBLE",
                  "STATE_SCHEMA", "StateSchemaNotCompatible", "INCOMPATIBLE_DATA_FOR_STATE")


def views_checkpoint(checkpoint_dir: Path, version: int = VIEWS_QUERY_VERSION) -> Path:
    return checkpoint_dir / f"speed_views_v{version}"


def older_views_checkpoints(checkpoint_dir: Path, version: int = VIEWS_QUERY_VERSION) -> list[Path]:
    """Checkpoints of earlier versions of the views query (the first had no version)."""
    found = []
    for path in sorted(checkpoint_dir.glob("speed_views*")):
        m = re.fullmatch(r"speed_views(?:_v(\d+))?", path.name)
        if m and path.is_dir() and int(m.group(1) or 1) < version:
            found.append(path)
    return found


def views_start(checkpoint_dir: Path, boundaries: list[datetime], starting_offsets: str, *,
                rebuild: bool = False, version: int = VIEWS_QUERY_VERSION) -> tuple[dict[str, str], str | None]:
    """Kafka options for the views query's first start, and a note for the operator.

    A query whose checkpoint exists resumes from it (the options are ignored). A new
    version of the query rebuilds every speed bucket that reports still read: from the
    earliest batch boundary on (an hour earlier, for stragglers), by Kafka timestamp.
    """
    if views_checkpoint(checkpoint_dir, version).exists():
        return {"startingOffsets": starting_offsets}, None
    older = older_views_checkpoints(checkpoint_dir, version)
    if not older and not rebuild:
        return {"startingOffsets": starting_offsets}, None
    if boundaries:
        since = min(boundaries) - timedelta(hours=1)
        options = {"startingTimestamp": str(int(since.timestamp() * 1000))}
        origin = f"Kafka offsets at {since.isoformat()} (the earliest batch boundary, less an hour)"
    else:
        options = {"startingOffsets": "earliest"}
        origin = "the earliest offsets Kafka keeps (no batch boundary yet)"
    reason = (f"the speed views query changed (version {version}); its old checkpoint "
              f"{', '.join(str(p) for p in older)} cannot be restored" if older else "rebuild asked for")
    note = (f"{reason}. Rebuilding the speed views from {origin} "
            f"into {views_checkpoint(checkpoint_dir, version)}: every bucket is rewritten with its full value. "
            "Delete the old checkpoint when the new query has caught up.")
    return options, note


def explain_failure(error: object, checkpoint: Path) -> str | None:
    """A clear message for a query that failed because its checkpoint cannot be restored."""
    text = str(error)
    if not any(marker in text for marker in RESTORE_ERRORS):
        return None
    return (f"the speed views query cannot restore its state from {checkpoint}: the query's shape changed "
            "without a new VIEWS_QUERY_VERSION (speed_layer/job.py). Way forward: bump VIEWS_QUERY_VERSION, or run "
            "`parallax speed --rebuild`, which moves this checkpoint aside and rebuilds the speed views from Kafka "
            "(README: 'Changing the speed layer').")


def kafka_stream(spark: SparkSession, bootstrap: str, topic: str, start: dict[str, str]) -> DataFrame:
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("maxOffsetsPerTrigger", 500_000)
    )
    # Only used when a checkpoint is new; afterwards the checkpoint's offsets win.
    for key, value in start.items():
        reader = reader.option(key, value)
    return reader.load()


def archive_frame(raw: DataFrame) -> DataFrame:
    """Parsed events with their UTC event date, the master dataset's partition column."""
    return parse_events(raw).withColumn("date", F.to_date(F.col("event_time")))


def speed_view_frame(raw: DataFrame, watermark: str) -> DataFrame:
    events = parse_events(raw).withWatermark("event_time", watermark)
    return views(dedupe_events(events, within_watermark=True), SPEED_GRANULARITY, exact_visitors=False)


def start_queries(
    spark: SparkSession,
    *,
    bootstrap: str,
    topic: str,
    starting_offsets: str,
    views_start_options: dict[str, str],
    watermark: str,
    trigger: str,
    archive_trigger: str,
    master_dir: str,
    checkpoint_dir: str,
    sink: Any,
) -> list[Any]:
    archive = (
        archive_frame(kafka_stream(spark, bootstrap, topic, {"startingOffsets": starting_offsets}))
        .writeStream.queryName("archive")
        .format("parquet")
        .partitionBy("date")
        .option("path", master_dir)
        .option("checkpointLocation", f"{checkpoint_dir}/archive")
        .trigger(processingTime=archive_trigger)
        .outputMode("append")
        .start()
    )
    views = (
        speed_view_frame(kafka_stream(spark, bootstrap, topic, views_start_options), watermark)
        .writeStream.queryName("speed_views")
        .outputMode("update")
        .foreachBatch(sink)
        .option("checkpointLocation", str(views_checkpoint(Path(checkpoint_dir))))
        .trigger(processingTime=trigger)
        .start()
    )
    return [archive, views]


def move_aside(checkpoint: Path) -> Path:
    """Keep a checkpoint that will be rebuilt, under a dated name, rather than delete it."""
    target = checkpoint.with_name(f"{checkpoint.name}.replaced-{time.strftime('%Y%m%dT%H%M%S')}")
    shutil.move(str(checkpoint), str(target))
    return target


def run(settings: Any, *, rebuild: bool = False) -> int:
    """Entry point: start both queries and run until SIGTERM/SIGINT or a query fails."""
    from infra.clients import cassandra_session, kafka_producer, json_bytes
    from infra.spark import get_session

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    session = cassandra_session(settings, settings.keyspace)
    checkpoint = views_checkpoint(Path(settings.checkpoint_dir))
    if rebuild and checkpoint.exists():
        log.warning("--rebuild: moved the views checkpoint aside to %s", move_aside(checkpoint))
    boundaries = list(read_boundaries(session, settings.keyspace).values())
    start_options, note = views_start(Path(settings.checkpoint_dir), boundaries, settings.starting_offsets,
                                      rebuild=rebuild)
    if note:
        log.warning("%s", note)
    producer = kafka_producer(settings, value_serializer=json_bytes)
    spark = get_session(settings, "parallax-speed", with_kafka=True)
    sink = SpeedViewSink(session, settings.keyspace, producer, settings.topic_live)
    log.info(
        "speed layer reading %s from %s (watermark %s, trigger %s); archive -> %s; checkpoints in %s",
        settings.topic_events, settings.kafka_bootstrap, settings.watermark, settings.speed_trigger,
        settings.master_dir, settings.checkpoint_dir,
    )
    queries = start_queries(
        spark,
        bootstrap=settings.kafka_bootstrap,
        topic=settings.topic_events,
        starting_offsets=settings.starting_offsets,
        views_start_options=start_options,
        watermark=settings.watermark,
        trigger=settings.speed_trigger,
        archive_trigger=settings.archive_trigger,
        master_dir=str(settings.master_dir),
        checkpoint_dir=str(settings.checkpoint_dir),
        sink=sink,
    )
    failed = None
    while not stop.is_set():
        for q in queries:
            if not q.isActive:
                failed = q.exception() or f"query {q.name} stopped"
                stop.set()
        stop.wait(1.0)
    log.info("stopping the speed layer's queries")
    for q in queries:
        if q.isActive:
            q.stop()
    producer.close(timeout=10)
    session.cluster.shutdown()
    spark.stop()
    if failed:
        explained = explain_failure(failed, checkpoint)
        if explained:
            log.error("%s", explained)
            return 2
        log.error("speed layer query failed: %s", failed)
        return 1
    return 0
