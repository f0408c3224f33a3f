"""Speed layer benchmark: does the speed layer sustain a stream of ``--rate`` events/s with
the whole catalogue and a ``--trigger-seconds`` trigger, on this machine, with Kafka and
Cassandra beside it?

    .venv/bin/python -m bench.speed_bench --events 18000000 --rate 20000 --trigger-seconds 30 --visitors 300000

A backlog of generated events (20 sites with two goals each, each visitor on one site;
pageviews, clicks and impressions of elements, custom events) is written to a Kafka topic
of its own, its event times advancing in offset order as a live stream's at ``--rate``
would. The speed layer's three queries then drain it together, in micro-batches of what
the trigger collects at that rate: the real views and sessions queries (the same
transforms, the real Cassandra sinks and live-update producer) and the archive (the same
frame, appended as Parquet). While backlogged they run as fast as they can.

What a micro-batch costs grows with the streaming state: every micro-batch scans each
dedupe's whole state to evict, and a live stream keeps a watermark's worth of ids there.
So the rate that counts is the one measured once the dedupes hold that much (``FULL``):
the layer sustains ``--rate`` if that rate is at least ``--rate``. The run must be long
enough for the state to fill: more than a watermark of event time, so with the default 10
minutes, well over 600 × ``--rate`` events. Without ``--rate``, the events spread over
three hours and only the drain rate is reported. Needs the local stack (`parallax stack up`).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import uuid
from datetime import datetime, timezone

import psutil
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from bench.common import cpu_seconds, machine, service_processes
from bench.speed_verdict import FULL, first_full, full_state_rate, ids_held, interval_seconds, sessions_closed
from infra.clients import cassandra_session, create_topics, delete_topics, json_bytes, kafka_producer
from infra.master import append_events
from infra.settings import load_settings
from infra.spark import get_session
from speed_layer.queries import archive_frame, kafka_stream, speed_session_frame, speed_view_frame
from speed_layer.sessions import SpeedSessionSink
from speed_layer.sinks import SpeedViewSink
from store.views import SessionSums, ViewWrites
from tools.synthetic.spark import event_json
from views.goals import Goal

SPREAD_S = 3 * 3600
WRITERS = 2  # Spark tasks writing the backlog at once: one per core


def preload(spark: SparkSession, bootstrap: str, topic: str, n: int, spread_s: int = SPREAD_S,
            visitors: int = 50_000, visit_s: int | None = None) -> None:
    """``n`` events over the ``spread_s`` seconds before now, roughly in offset order, to ``topic``.

    ``visitors`` are on the sites at once. With ``visit_s``, each one's visit lasts that
    long and the next visit is another visitor's (visits end at staggered times, so sessions
    close all along, as live); without it, the same visitors stay the whole run.
    """
    now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
    spread_ms = spread_s * 1000
    r = F.col("id")
    h = F.xxhash64(r)
    # The writers run side by side, each over its own range of ids: interleaving their
    # times keeps Kafka's offsets in event-time order, as a live stream's are (up to the
    # jitter below), so the watermark moves with the backlog and not ahead of it.
    per_writer = -(-n // WRITERS)
    order = (r % per_writer) * WRITERS + (r / per_writer).cast("long")
    paths = F.array(*[F.lit(p) for p in ["/", "/pricing", "/blog", "/blog/a", "/docs", "/signup"]])
    refs = F.array(*[F.lit(x) for x in ["", "https://www.google.com/", "https://news.ycombinator.com/",
                                         "https://site.test/"]])
    page = paths[F.abs(h % 6)]
    # A visitor belongs to one site, as on the web: their events make sessions of several.
    visitor = F.abs(F.xxhash64(r, F.lit(4))) % visitors
    offset_ms = (order * spread_ms / n).cast("long")  # the event's time, less the jitter below
    visitor_id = F.concat(F.lit("v"), visitor.cast("string"))
    if visit_s:
        # Each of the concurrent visitors is followed by a new one every visit_s, at a phase
        # of its own: visits end evenly over time rather than all at once.
        visit_ms = visit_s * 1000
        phase = (visitor * visit_ms / visitors).cast("long")
        visit = F.floor((offset_ms + phase) / visit_ms)
        visitor_id = F.concat(visitor_id, F.lit("-"), visit.cast("string"))
    kinds = F.array(*[F.lit(k) for k in ["pageview"] * 6 + ["click", "impression", "impression", "custom"]])
    kind = kinds[F.abs(F.xxhash64(r, F.lit(1)) % 10)]
    url = F.concat(F.lit("https://site.test"), page, F.when(F.abs(h % 7) == 0, F.lit("?utm_source=news"))
                   .otherwise(F.lit("")))
    referrer = refs[F.abs(F.xxhash64(r, F.lit(3)) % 4)]
    value = event_json(
        site=F.concat(F.lit("bench-"), (visitor % 20).cast("string")), kind=kind,
        ts=F.lit(now_ms - spread_ms) + offset_ms + F.abs(F.xxhash64(r, F.lit(2)) % 60_000), url=url, path=page,
        referrer=referrer, visitor_id=visitor_id, client_key=r, element_hash=h, collector_fields=False)
    (spark.range(0, n, numPartitions=WRITERS).select(F.col("id").cast("string").alias("key"), value.alias("value"))
     .write.format("kafka").option("kafka.bootstrap.servers", bootstrap).option("topic", topic)
     # Compressed so that an hour at 20,000/s fits the disk beside the checkpoints (the
     # collector does not compress): the queries pay for the decompression on top.
     .option("kafka.compression.type", "lz4").save())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100_000, help="events per micro-batch")
    parser.add_argument("--rate", type=int,
                        help="events per second of event time, as a live stream at that rate has them (default: "
                             "the events spread over three hours)")
    parser.add_argument("--visitors", type=int, default=50_000, help="visitors on the sites at once")
    parser.add_argument("--visit-minutes", type=float,
                        help="each visit lasts this long, then another visitor takes over (default: the same "
                             "visitors all run, so no session closes)")
    parser.add_argument("--trigger-seconds", type=float,
                        help="with --rate: micro-batches of what this trigger collects at that rate (sets --batch)")
    parser.add_argument("--queries", nargs="+", choices=QUERIES, default=list(QUERIES),
                        help="run only some of the queries (to see what each costs)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra Spark setting, for A/B runs (repeatable)")
    parser.add_argument("--topic", help="drain this already loaded topic (kept) instead of loading a new one")
    parser.add_argument("--keep-topic", action="store_true", help="keep the loaded topic for later --topic runs")
    parser.add_argument("--progress", metavar="PATH",
                        help="write every micro-batch's progress (state operators' metrics, durations) as JSON")
    return parser.parse_args()


QUERIES = ("views", "sessions", "archive")


def main() -> None:
    args = parse_args()
    if args.trigger_seconds:
        if not args.rate:
            raise SystemExit("--trigger-seconds needs --rate")
        args.batch = round(args.rate * args.trigger_seconds)

    settings = load_settings()
    topic = args.topic or f"bench.events.{uuid.uuid4().hex[:8]}"
    live_topic = f"bench.live.{uuid.uuid4().hex[:8]}"
    create_topics(settings, {**({} if args.topic else {topic: {"partitions": 3}}), live_topic: {"partitions": 1}})
    spark = get_session(settings, "parallax-speed-bench", with_kafka=True)
    spark.conf.set("spark.sql.streaming.numRecentProgressUpdates", "10000")  # every micro-batch of a long run
    for item in args.conf:
        key, _, value = item.partition("=")
        spark.conf.set(key, value)
    session = cassandra_session(settings, settings.cassandra.keyspace)
    producer = kafka_producer(settings, value_serializer=json_bytes)
    checkpoint = tempfile.mkdtemp(prefix="parallax-speed-bench-")
    try:
        if not args.topic:
            t0 = time.perf_counter()
            spread_s = round(args.events / args.rate) if args.rate else SPREAD_S
            preload(spark, settings.kafka.bootstrap, topic, args.events, spread_s, args.visitors,
                    round(args.visit_minutes * 60) if args.visit_minutes else None)
            print(f"preloaded {args.events:,} events into {topic} in {time.perf_counter() - t0:.0f}s", flush=True)

        goals = tuple(g for i in range(20) for g in (Goal(f"bench-{i}", "Signup page", "page", "/signup"),
                                                      Goal(f"bench-{i}", "Signed up", "event", "signup")))

        def archive(df, batch_id):
            # What the archive query's Delta sink writes: one commit per micro-batch.
            append_events(df, f"{checkpoint}/master")

        writes = ViewWrites(session, settings.cassandra.keyspace)
        sinks = {"views": SpeedViewSink(writes, producer, live_topic),
                 "sessions": SpeedSessionSink(SessionSums(session, settings.cassandra.keyspace), writes),
                 "archive": archive}
        ends: dict[str, list[float]] = {name: [] for name in args.queries}
        ends_at: dict[str, dict[int, float]] = {name: {} for name in args.queries}
        sink_s: dict[str, list[float]] = {name: [] for name in args.queries}

        def timed(name):
            def run(df, batch_id):
                start = time.perf_counter()
                sinks[name](df, batch_id)
                ends[name].append(time.perf_counter())
                ends_at[name][batch_id] = ends[name][-1]
                sink_s[name].append(ends[name][-1] - start)
            return run

        # At a rate, the archive keeps the live pace (its own trigger, what that collects at
        # the rate) rather than draining ahead: it is load beside the queries measured, as live.
        paced = {"archive"} if args.rate else set()
        archive_every = interval_seconds(settings.speed.archive_trigger)

        def raw(name):
            batch = round(args.rate * archive_every) if name in paced else args.batch
            return kafka_stream(spark, settings.kafka.bootstrap, topic, {"startingOffsets": "earliest"}, batch)

        frames = {"views": lambda: (speed_view_frame(raw("views"), settings.speed.watermark, goals), "update"),
                  "sessions": lambda: (speed_session_frame(raw("sessions"), settings.speed.watermark,
                                                           settings.spark.session_gap), "append"),
                  "archive": lambda: (archive_frame(raw("archive")), "append")}
        # CPU rather than wall time is what the queries cost when other work shares the cores.
        processes = {"spark": [psutil.Process(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())],
                     "driver": [psutil.Process(os.getpid())], **service_processes(settings)}
        cpu0 = {name: cpu_seconds(ps) for name, ps in processes.items()}
        t0 = time.perf_counter()
        queries = {}
        for name in args.queries:
            frame, mode = frames[name]()
            writer = (frame.writeStream.outputMode(mode).foreachBatch(timed(name))
                      .option("checkpointLocation", f"{checkpoint}/{name}"))
            writer = (writer.trigger(processingTime=settings.speed.archive_trigger) if name in paced
                      else writer.trigger(availableNow=True))
            queries[name] = writer.start()
        for name, q in queries.items():
            if name not in paced:
                q.awaitTermination()
        for name in paced & set(queries):
            queries[name].stop()
        elapsed = time.perf_counter() - t0
        cpu = {name: round(cpu_seconds(ps) - cpu0[name], 1) for name, ps in processes.items()}
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
        # The queries share the two cores: the layer keeps up while the slowest one does.
        measured = [name for name in queries if name not in paced]
        result["steady_events_per_s"] = min((result[name]["steady_events_per_s"] or 0 for name in measured),
                                            default=None)
        if args.rate:
            # A live stream at --rate holds a watermark's worth of event ids in each query's
            # dedupe state, and every micro-batch scans that state: the rate it sustains is
            # the one measured once the state is that full.
            full_ids = interval_seconds(settings.speed.watermark) * args.rate
            data = {name: [p for p in q.recentProgress if p["numInputRows"]] for name, q in queries.items()}
            # With visits that end, a live stream's session state holds every session until it
            # closes (the gap plus the watermark after its last event): it is full once sessions
            # close as fast as visits start. Both queries drain the same offsets in micro-batches
            # of the same size, so the same micro-batch number is the same point in the stream.
            closing_from = 0
            if args.visit_minutes and "sessions" in data:
                closed = sessions_closed(data["sessions"])
                per_batch = args.visitors * (args.batch / args.rate) / (args.visit_minutes * 60)
                closing_from = first_full(closed, FULL * per_batch)
                result["sessions"]["sessions_closed_per_batch"] = closed[closing_from:-1]
            for name in measured:  # the views and sessions queries: the archive is paced
                held = ids_held(data[name])
                first = max(first_full(held, FULL * full_ids), closing_from)
                result[name]["ids_held"] = held[-1] if held else 0
                result[name]["full_state_from_batch"] = first
                result[name]["full_state_events_per_s"] = full_state_rate(
                    [p["numInputRows"] for p in data[name]], [ends_at[name][p["batchId"]] for p in data[name]], first)
                if args.trigger_seconds:
                    # Full micro-batches (not the last, partial one) that took longer than the trigger.
                    took = [p["durationMs"]["triggerExecution"] / 1000 for p in data[name][first:-1]]
                    over = sum(t > args.trigger_seconds for t in took)
                    result[name]["full_state_over_trigger"] = f"{over} of {len(took)}"
            keeps_pace = True
            for name in paced & set(queries):
                # Paced: it keeps up if its micro-batches take less than its trigger.
                took = [p["durationMs"]["triggerExecution"] / 1000 for p in data[name][1:-1]]
                mean = sum(took) / len(took) if took else float("nan")
                result[name]["mean_batch_seconds"] = round(mean, 1)
                result[name]["over_trigger"] = f"{sum(t > archive_every for t in took)} of {len(took)}"
                keeps_pace = keeps_pace and mean <= archive_every
            full = [result[name]["full_state_events_per_s"] for name in measured]
            result["full_state_events_per_s"] = None if None in full or not full else min(full)
            result["sustains_rate"] = (None if result["full_state_events_per_s"] is None
                                       else result["full_state_events_per_s"] >= args.rate and keeps_pace)
        result["cpu_seconds"] = cpu
        if args.progress:
            with open(args.progress, "w") as out:
                json.dump({name: [json.loads(p.json) if hasattr(p, "json") else p for p in q.recentProgress]
                           for name, q in queries.items()}, out, indent=1)
        print(json.dumps(result), flush=True)
        print(f"machine: {machine()}, Spark driver {settings.spark.driver_memory}, "
              f"{settings.spark.master}; micro-batches of up to {args.batch:,} events, queries "
              f"{', '.join(args.queries)} running together")
    finally:
        producer.close(timeout=10)
        session.cluster.shutdown()
        spark.stop()
        delete_topics(settings, [live_topic] + ([] if args.topic or args.keep_topic else [topic]))
        shutil.rmtree(checkpoint, ignore_errors=True)


if __name__ == "__main__":
    main()
