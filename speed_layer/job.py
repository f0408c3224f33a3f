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
import signal
import threading
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from speed_layer.sinks import SpeedViewSink
from views.catalogue import SPEED_GRANULARITY
from views.transforms import dedupe_events, parse_events, views

log = logging.getLogger(__name__)


def kafka_stream(spark: SparkSession, bootstrap: str, topic: str, starting_offsets: str) -> DataFrame:
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        # Only used when a checkpoint is new; afterwards the checkpoint's offsets win.
        .option("startingOffsets", starting_offsets)
        .option("maxOffsetsPerTrigger", 500_000)
        .load()
    )


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
    watermark: str,
    trigger: str,
    archive_trigger: str,
    master_dir: str,
    checkpoint_dir: str,
    sink: Any,
) -> list[Any]:
    archive = (
        archive_frame(kafka_stream(spark, bootstrap, topic, starting_offsets))
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
        speed_view_frame(kafka_stream(spark, bootstrap, topic, starting_offsets), watermark)
        .writeStream.queryName("speed_views")
        .outputMode("update")
        .foreachBatch(sink)
        .option("checkpointLocation", f"{checkpoint_dir}/speed_views")
        .trigger(processingTime=trigger)
        .start()
    )
    return [archive, views]


def run(settings: Any) -> int:
    """Entry point: start both queries and run until SIGTERM/SIGINT or a query fails."""
    from infra.clients import cassandra_session, kafka_producer, json_bytes
    from infra.spark import get_session

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    session = cassandra_session(settings, settings.keyspace)
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
        log.error("speed layer query failed: %s", failed)
        return 1
    return 0
