"""Speed layer benchmark: how many events/s the speed layer sustains with the whole
catalogue, on this machine, with Kafka and Cassandra beside it.

    .venv/bin/python -m bench.speed_bench --events 1000000 --batch 100000

A backlog of generated events (20 sites with two goals each; pageviews, clicks and
impressions of elements, custom events; visits spread over three hours in offset order, so
the watermark moves and sessions close as the backlog drains) is written to a Kafka topic
of its own. The real views query and the real sessions query (the same transforms, the
real Cassandra sinks and live-update producer) then drain it together, in micro-batches of
``--batch`` events. While they are backlogged they run as fast as they can, so their rate
is the highest they can sustain: a trigger interval shorter than a batch's time would fall
behind. Needs the local stack (`parallax stack up`).
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


SPREAD_MS = 3 * 3600 * 1000


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU a live process has used so far (0 if it is gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def service_pids(settings) -> dict[str, int | None]:
    """The processes whose CPU the run accounts for: the Spark JVM, this driver, Kafka, Cassandra."""
    from infra.proc import read_pid

    run = settings.var_dir / "run"
    return {"kafka": read_pid(run / "kafka.pid"), "cassandra": read_pid(run / "cassandra.pid")}


def preload(spark, bootstrap: str, topic: str, n: int) -> None:
    """``n`` events over the three hours before now, roughly in offset order, to ``topic``."""
    from pyspark.sql import functions as F

    from schemas.sources import NONE_VALUE, UTM_FIELDS
    from views.transforms import query_param, referrer_source

    now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
    r = F.col("id")
    h = F.xxhash64(r)
    paths = F.array(*[F.lit(p) for p in ["/", "/pricing", "/blog", "/blog/a", "/docs", "/signup"]])
    refs = F.array(*[F.lit(x) for x in ["", "https://www.google.com/", "https://news.ycombinator.com/",
                                         "https://site.test/"]])
    page = paths[F.abs(h % 6)]
    kinds = F.array(*[F.lit(k) for k in ["pageview"] * 6 + ["click", "impression", "impression", "custom"]])
    kind = kinds[F.abs(F.xxhash64(r, F.lit(1)) % 10)]
    url = F.concat(F.lit("https://site.test"), page, F.when(F.abs(h % 7) == 0, F.lit("?utm_source=news"))
                   .otherwise(F.lit("")))
    referrer = refs[F.abs(F.xxhash64(r, F.lit(3)) % 4)]
    # The collector's enrichment, as it writes it: the client and where the visit came from
    # (schemas.sources; the views' Spark rule gives the same answers).
    enriched = [
        F.array(*[F.lit(c) for c in ("FR", "US", "DE", "IN")])[F.abs(F.xxhash64(r, F.lit(5)) % 4)].alias("country"),
        F.array(*[F.lit(c) for c in ("desktop", "mobile", "tablet")])[F.abs(F.xxhash64(r, F.lit(6)) % 3)]
        .alias("device"),
        F.lit("Firefox").alias("browser"), F.lit("Linux").alias("os"),
        referrer_source(url, referrer).alias("referrer_source"),
        *(F.coalesce(query_param(url, name), F.lit(NONE_VALUE)).alias(name) for name in UTM_FIELDS),
    ]
    value = F.to_json(F.struct(
        F.expr("uuid()").alias("event_id"),
        F.concat(F.lit("bench-"), (F.abs(h) % 20).cast("string")).alias("site"),
        kind.alias("type"),
        (F.lit(now_ms - SPREAD_MS) + (r * SPREAD_MS / n).cast("long") + F.abs(F.xxhash64(r, F.lit(2)) % 60_000))
        .alias("ts"),
        url.alias("url"),
        page.alias("path"),
        referrer.alias("referrer"),
        F.concat(F.lit("v"), (F.abs(F.xxhash64(r, F.lit(4))) % 50_000).cast("string")).alias("visitor_id"),
        F.when(kind == "custom", F.lit("signup")).alias("name"),
        F.when(kind.isin("click", "impression"),
               F.create_map(F.lit("element"), F.concat(F.lit("el"), (F.abs(h) % 5).cast("string")))).alias("props"),
        *enriched,
    ))
    (spark.range(n).select(F.col("id").cast("string").alias("key"), value.alias("value"))
     .write.format("kafka").option("kafka.bootstrap.servers", bootstrap).option("topic", topic).save())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100_000, help="events per micro-batch")
    parser.add_argument("--queries", nargs="+", choices=QUERIES, default=list(QUERIES),
                        help="run only some of the queries (to see what each costs)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra Spark setting, for A/B runs (repeatable)")
    parser.add_argument("--topic", help="drain this already loaded topic (kept) instead of loading a new one")
    parser.add_argument("--keep-topic", action="store_true", help="keep the loaded topic for later --topic runs")
    parser.add_argument("--progress", metavar="PATH",
                        help="write every micro-batch's progress (state operators' metrics, durations) as JSON")
    return parser.parse_args()


QUERIES = ("views", "sessions")


def main() -> None:
    args = parse_args()

    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    from infra.clients import cassandra_session, json_bytes, kafka_producer
    from infra.settings import load_settings
    from infra.spark import get_session
    from speed_layer.job import speed_session_frame, speed_view_frame
    from speed_layer.sessions import SpeedSessionSink
    from speed_layer.sinks import SpeedViewSink
    from views.goals import Goal

    settings = load_settings()
    topic = args.topic or f"bench.events.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    live_topic = f"bench.live.{uuid.uuid4().hex[:8]}"
    admin.create_topics(([] if args.topic else [NewTopic(topic, num_partitions=3, replication_factor=1)])
                        + [NewTopic(live_topic, num_partitions=1, replication_factor=1)])
    spark = get_session(settings, "parallax-speed-bench", with_kafka=True)
    for item in args.conf:
        key, _, value = item.partition("=")
        spark.conf.set(key, value)
    session = cassandra_session(settings, settings.keyspace)
    producer = kafka_producer(settings, value_serializer=json_bytes)
    checkpoint = tempfile.mkdtemp(prefix="parallax-speed-bench-")
    try:
        if not args.topic:
            t0 = time.perf_counter()
            preload(spark, settings.kafka_bootstrap, topic, args.events)
            print(f"preloaded {args.events:,} events into {topic} in {time.perf_counter() - t0:.0f}s", flush=True)

        goals = tuple(g for i in range(20) for g in (Goal(f"bench-{i}", "Signup page", "page", "/signup"),
                                                      Goal(f"bench-{i}", "Signed up", "event", "signup")))
        sinks = {"views": SpeedViewSink(session, settings.keyspace, producer, live_topic),
                 "sessions": SpeedSessionSink(session, settings.keyspace)}
        ends: dict[str, list[float]] = {name: [] for name in args.queries}
        sink_s: dict[str, list[float]] = {name: [] for name in args.queries}

        def timed(name):
            def run(df, batch_id):
                start = time.perf_counter()
                sinks[name](df, batch_id)
                ends[name].append(time.perf_counter())
                sink_s[name].append(ends[name][-1] - start)
            return run

        def raw():
            return (spark.readStream.format("kafka").option("kafka.bootstrap.servers", settings.kafka_bootstrap)
                    .option("subscribe", topic).option("startingOffsets", "earliest")
                    .option("maxOffsetsPerTrigger", args.batch).load())

        frames = {"views": lambda: (speed_view_frame(raw(), settings.watermark, goals), "update"),
                  "sessions": lambda: (speed_session_frame(raw(), settings.watermark, settings.session_gap),
                                       "append")}
        # CPU rather than wall time is what the queries cost when other work shares the cores.
        pids = {"spark": spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid(), "driver": os.getpid(),
                **service_pids(settings)}
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        t0 = time.perf_counter()
        queries = {}
        for name in args.queries:
            frame, mode = frames[name]()
            queries[name] = (frame.writeStream.outputMode(mode).foreachBatch(timed(name))
                             .option("checkpointLocation", f"{checkpoint}/{name}").trigger(availableNow=True).start())
        for q in queries.values():
            q.awaitTermination()
        elapsed = time.perf_counter() - t0
        cpu = {name: round(cpu_seconds(pid) - cpu0[name], 1) for name, pid in pids.items()}
        events = sum(p["numInputRows"] for p in next(iter(queries.values())).recentProgress)
        result: dict = {"events": events, "batch": args.batch, "seconds": round(elapsed, 1),
                        "overall_events_per_s": round(events / elapsed)}
        for name, q in queries.items():
            progress = [p for p in q.recentProgress if p["numInputRows"]]
            # The first batch also pays for planning and JIT warm-up: the steady rate leaves it out.
            steady_rows = sum(p["numInputRows"] for p in progress[1:])
            steady_s = ends[name][-1] - ends[name][0] if len(ends[name]) > 1 else float("nan")
            result[name] = {"steady_events_per_s": round(steady_rows / steady_s) if steady_rows else None,
                            "batch_seconds": [round(p["durationMs"]["triggerExecution"] / 1000, 1) for p in progress],
                            "sink_seconds": [round(t, 1) for t in sink_s[name] if t >= 0.05]}
        # Both queries share the two cores: the layer keeps up while the slower one does.
        result["steady_events_per_s"] = min(result[name]["steady_events_per_s"] or 0 for name in queries)
        result["cpu_seconds"] = cpu
        if args.progress:
            with open(args.progress, "w") as out:
                json.dump({name: [json.loads(p.json) if hasattr(p, "json") else p for p in q.recentProgress]
                           for name, q in queries.items()}, out, indent=1)
        print(json.dumps(result), flush=True)
        print(f"machine: {platform.node()} {os.cpu_count()} cores, Spark driver {settings.spark_driver_memory}, "
              f"{settings.spark_master}; micro-batches of up to {args.batch:,} events, queries "
              f"{' and '.join(args.queries)} running together")
    finally:
        producer.close(timeout=10)
        session.cluster.shutdown()
        spark.stop()
        admin.delete_topics([live_topic] + ([] if args.topic or args.keep_topic else [topic]))
        admin.close()
        shutil.rmtree(checkpoint, ignore_errors=True)


if __name__ == "__main__":
    main()
