"""Speed layer benchmark: how many events/s the views query sustains with the whole
catalogue, on this machine, with Kafka and Cassandra beside it.

    .venv/bin/python -m bench.speed_bench --events 1000000 --batch 100000

A backlog of generated events is written to a Kafka topic of its own; the real views query
(the same transform, the real Cassandra sink and live-update producer) then drains it in
micro-batches of ``--batch`` events. While it is backlogged, the query runs as fast as it
can, so its rate is the highest it can sustain: a trigger interval shorter than a batch's
time would fall behind. Needs the local stack (`parallax stack up`).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
import uuid
from datetime import datetime, timezone


def preload(spark, bootstrap: str, topic: str, n: int) -> None:
    """``n`` events spread over the last ten minutes, written to ``topic`` by Spark."""
    from pyspark.sql import functions as F

    now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
    r = F.col("id")
    h = F.xxhash64(r)
    paths = F.array(*[F.lit(p) for p in ["/", "/pricing", "/blog", "/blog/a", "/docs", "/signup"]])
    refs = F.array(*[F.lit(x) for x in ["", "https://www.google.com/", "https://news.ycombinator.com/",
                                         "https://site.test/"]])
    page = paths[F.abs(h % 6)]
    value = F.to_json(F.struct(
        F.expr("uuid()").alias("event_id"),
        F.concat(F.lit("bench-"), (F.abs(h) % 20).cast("string")).alias("site"),
        F.when(F.abs(F.xxhash64(r, F.lit(1)) % 5) < 4, F.lit("pageview")).otherwise(F.lit("click")).alias("type"),
        (F.lit(now_ms - 600_000) + F.abs(F.xxhash64(r, F.lit(2)) % 600_000)).alias("ts"),
        F.concat(F.lit("https://site.test"), page,
                 F.when(F.abs(h % 7) == 0, F.lit("?utm_source=news")).otherwise(F.lit(""))).alias("url"),
        page.alias("path"),
        refs[F.abs(F.xxhash64(r, F.lit(3)) % 4)].alias("referrer"),
        F.concat(F.lit("v"), (F.abs(F.xxhash64(r, F.lit(4))) % 50_000).cast("string")).alias("visitor_id"),
    ))
    (spark.range(n).select(F.col("id").cast("string").alias("key"), value.alias("value"))
     .write.format("kafka").option("kafka.bootstrap.servers", bootstrap).option("topic", topic).save())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100_000, help="events per micro-batch")
    args = parser.parse_args()

    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    from infra.clients import cassandra_session, json_bytes, kafka_producer
    from infra.settings import load_settings
    from infra.spark import get_session
    from speed_layer.job import speed_view_frame
    from speed_layer.sinks import SpeedViewSink

    settings = load_settings()
    topic = f"bench.events.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    live_topic = f"{topic}.live"
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1),
                         NewTopic(live_topic, num_partitions=1, replication_factor=1)])
    spark = get_session(settings, "parallax-speed-bench", with_kafka=True)
    session = cassandra_session(settings, settings.keyspace)
    producer = kafka_producer(settings, value_serializer=json_bytes)
    checkpoint = tempfile.mkdtemp(prefix="parallax-speed-bench-")
    try:
        t0 = time.perf_counter()
        preload(spark, settings.kafka_bootstrap, topic, args.events)
        print(f"preloaded {args.events:,} events into {topic} in {time.perf_counter() - t0:.0f}s", flush=True)

        sink = SpeedViewSink(session, settings.keyspace, producer, live_topic)
        batches: list[tuple[int, float]] = []

        def timed_sink(df, batch_id):
            t = time.perf_counter()
            sink(df, batch_id)
            batches.append((batch_id, time.perf_counter() - t))

        raw = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", settings.kafka_bootstrap)
               .option("subscribe", topic).option("startingOffsets", "earliest")
               .option("maxOffsetsPerTrigger", args.batch).load())
        query = (speed_view_frame(raw, settings.watermark).writeStream.outputMode("update")
                 .foreachBatch(timed_sink).option("checkpointLocation", checkpoint)
                 .trigger(availableNow=True).start())
        t0 = time.perf_counter()
        query.awaitTermination()
        elapsed = time.perf_counter() - t0
        progress = [p for p in query.recentProgress if p["numInputRows"]]
        processed = sum(p["numInputRows"] for p in progress)
        durations = [p["durationMs"]["triggerExecution"] / 1000 for p in progress]
        # The first batch also pays for the query's planning and JIT warm-up.
        steady = progress[1:] or progress
        steady_rate = sum(p["numInputRows"] for p in steady) / sum(p["durationMs"]["triggerExecution"] / 1000
                                                                    for p in steady)
        result = {"events": processed, "batch": args.batch, "seconds": round(elapsed, 1),
                  "overall_events_per_s": round(processed / elapsed), "steady_events_per_s": round(steady_rate),
                  "batch_seconds": [round(d, 1) for d in durations]}
        print(json.dumps(result), flush=True)
        print(f"machine: {platform.node()} {os.cpu_count()} cores, Spark driver {settings.spark_driver_memory}, "
              f"{settings.spark_master}; {len(durations)} micro-batches of up to {args.batch:,} events")
    finally:
        producer.close(timeout=10)
        session.cluster.shutdown()
        spark.stop()
        admin.delete_topics([topic, live_topic])
        admin.close()
        shutil.rmtree(checkpoint, ignore_errors=True)


if __name__ == "__main__":
    main()
