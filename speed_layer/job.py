"""The speed layer: Kafka `events` -> Cassandra speed views + the master dataset archive.

Run it with ``parallax speed``. The recipe: a Spark session, the queries' starting points
(``speed_layer.checkpoints``), the three streaming queries (``speed_layer.queries``) with
their sinks, then supervision until SIGTERM/SIGINT or a failure: the views query restarts
with changed goals. A restart resumes every query from its checkpoint: nothing is skipped,
nothing counted twice. Events behind the watermark are dropped (the batch layer counts
them); how many, per micro-batch, goes to ``speed_dropped`` (``speed_layer.progress``).
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

from cassandra.cluster import Session
from kafka import KafkaProducer
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from infra import master
from infra.clients import cassandra_session, json_bytes, kafka_producer
from infra.settings import Settings
from infra.spark import get_session
from speed_layer.checkpoints import VERSIONS, explain_failure, move_aside, query_checkpoint, query_start
from speed_layer.progress import ProgressListener
from speed_layer.queries import SpeedQueries
from speed_layer.sessions import SpeedSessionSink
from speed_layer.sinks import SpeedViewSink
from store.boundary import Boundaries
from store.diagnostics import Diagnostics
from store.registry import Registry
from store.views import SessionSums, ViewWrites
from views.goals import Goal

log = logging.getLogger(__name__)


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def starting_points(checkpoint_dir: Path, boundaries: Boundaries, starting_offsets: str, *,
                    rebuild: bool) -> dict[str, dict[str, str]]:
    """Each stateful query's Kafka options for a new checkpoint; with ``rebuild``, the
    current checkpoints are moved aside first. Tells the operator what is rebuilt."""
    if rebuild:
        for query in VERSIONS:
            path = query_checkpoint(checkpoint_dir, query)
            if path.exists():
                log.warning("--rebuild: moved the checkpoint %s aside to %s", path.name, move_aside(path))
    known = list(boundaries.all().values())
    starts = {}
    for query in VERSIONS:
        starts[query], note = query_start(checkpoint_dir, query, known, starting_offsets, rebuild=rebuild)
        if note:
            log.warning("%s", note)
    return starts


def supervise(queries: dict[str, StreamingQuery], starter: SpeedQueries, registry: Registry, goals: tuple[Goal, ...],
              refresh_s: float, stop: threading.Event) -> tuple[object, str] | None:
    """Watch the queries until ``stop`` or a failure (returned with the query's name);
    restart the views query when the goals change (looked up every ``refresh_s``)."""
    next_goal_check = time.monotonic() + refresh_s
    while not stop.is_set():
        for q in queries.values():
            if not q.isActive:
                return q.exception() or f"query {q.name} stopped", q.name
        if time.monotonic() >= next_goal_check:
            next_goal_check = time.monotonic() + refresh_s
            try:
                latest = registry.goals()
            except Exception as exc:  # Cassandra away: keep the goals we have, look again later
                log.warning("could not read the goals (%s); keeping the %d known", exc, len(goals))
                latest = goals
            if latest != goals:
                log.info("goals changed (%d -> %d): restarting the views query with them", len(goals), len(latest))
                goals = latest
                queries["views"].stop()
                queries["views"] = starter.start_views(goals)
        stop.wait(1.0)
    return None


def shutdown(queries: dict[str, StreamingQuery], producer: KafkaProducer, session: Session,
             spark: SparkSession) -> None:
    """Stop what ``run`` started; what fails to stop is logged, and the rest still stopped,
    so that the job ends (with its exit code) whatever is away."""
    steps = [(f"the {name} query", q.stop) for name, q in queries.items() if q.isActive]
    steps += [("the Kafka producer", lambda: producer.close(timeout=10)),
              ("the Cassandra session", session.cluster.shutdown), ("Spark", spark.stop)]
    for what, step in steps:
        try:
            step()
        except Exception as exc:  # Kafka away (unsent live updates), a query failing as it stops
            log.warning("could not stop %s cleanly: %s", what, exc)


def run(settings: Settings, *, rebuild: bool = False) -> int:
    """Entry point: start the queries and run until SIGTERM/SIGINT or a query fails."""
    if master.is_legacy(settings.paths.master_dir):
        log.error("the master dataset at %s is a Parquet archive of an earlier Parallax: migrate it to the Delta "
                  "table first (`parallax archive migrate`), then start the speed layer", settings.paths.master_dir)
        return 2
    stop = stop_on_signals()
    keyspace, checkpoint_dir = settings.cassandra.keyspace, settings.paths.checkpoint_dir
    session = cassandra_session(settings, keyspace)
    registry = Registry(session, keyspace)
    starts = starting_points(checkpoint_dir, Boundaries(session, keyspace), settings.speed.starting_offsets,
                             rebuild=rebuild)
    # A send waits at most 10 s for Kafka's metadata: the live updates are not worth more.
    producer = kafka_producer(settings, value_serializer=json_bytes, max_block_ms=10_000)
    spark = get_session(settings, "parallax-speed", with_kafka=True)
    spark.streams.addListener(ProgressListener(Diagnostics(session, keyspace)))
    writes = ViewWrites(session, keyspace)
    # The sinks wait for Cassandra until ``stop``: a stopping job is not held by a write
    # that cannot be made (the micro-batch is replayed from the checkpoint at the next start).
    starter = SpeedQueries(spark, settings, SpeedViewSink(writes, producer, settings.kafka.topic_live, stop=stop),
                           SpeedSessionSink(SessionSums(session, keyspace), writes, stop=stop), starts)
    goals = registry.goals()
    log.info("speed layer reading %s from %s (watermark %s, trigger %s, session gap %s, %d goals); archive -> %s; "
             "checkpoints in %s", settings.kafka.topic_events, settings.kafka.bootstrap, settings.speed.watermark,
             settings.speed.trigger, settings.spark.session_gap, len(goals), settings.paths.master_dir, checkpoint_dir)
    queries = starter.start_all(goals)
    failure = supervise(queries, starter, registry, goals, settings.speed.goals_refresh_s, stop)
    stop.set()  # after a failure too: the other queries' sinks stop waiting for Cassandra
    log.info("stopping the speed layer's queries")
    shutdown(queries, producer, session, spark)
    if failure is None:
        return 0
    error, query = failure
    explained = explain_failure(error, query_checkpoint(checkpoint_dir, query if query in VERSIONS else "speed_views"))
    if explained:
        log.error("%s", explained)
        return 2
    log.error("speed layer query failed: %s", error)
    return 1
